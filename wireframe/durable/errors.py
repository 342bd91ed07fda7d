"""Errors of durable jobs, raised inside handlers (re-exported by `wireframe.scheduler`)."""

from __future__ import annotations

from typing import Any, ClassVar

from wireframe.store.records import LeaseStatus


def _rebuild(cls: type[BaseException], args: tuple[Any, ...]) -> Any:
    """Recreate an exception from its constructor arguments (for pickle)."""
    return cls(*args)


class SchedulerError(Exception):
    """Base class of every error the job scheduler raises, durable calls' errors included.

    Defined here, in the lowest layer whose errors are the scheduler's, so that `DurableError`
    can derive from it; `wireframe.SchedulerError` and `wireframe.scheduler.SchedulerError`
    are this class.
    """


class DurableError(SchedulerError):
    """Base class of the errors durable calls raise."""

    final: ClassVar[bool] = False
    """True for an error that a re-run would raise again, because its cause is in the job's
    record (a recorded outcome, or the recorded history itself): when a handler lets it
    propagate, the job fails at once, whatever its retry policy."""


class NonDeterminismError(DurableError):
    """A re-run asked for a different checkpoint than the one recorded at that position."""

    final = True


class EventTimeout(DurableError, TimeoutError):
    """`ctx.wait_event` reached its timeout before the event was emitted."""

    final = True


class DeferTimeout(DurableError, TimeoutError):
    """`ctx.defer_until` reached its timeout before its condition came true."""

    final = True


class NotAChildError(DurableError, ValueError):
    """`ctx.join` was given a job that is not a child of the joining job."""

    final = True


class ChildFailed(DurableError):
    """A joined child job failed."""

    final = True

    def __init__(self, job_id: int, message: str | None = None) -> None:
        self.job_id = job_id
        self.message = message if message is not None else f"child job {job_id} failed"
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.job_id, self.message)))


class ChildCancelled(DurableError):
    """A joined child job was cancelled."""

    final = True

    def __init__(self, job_id: int, message: str | None = None) -> None:
        self.job_id = job_id
        self.message = message if message is not None else f"child job {job_id} was cancelled"
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.job_id, self.message)))


class Suspend(BaseException):
    """Control flow, not an error: the job leaves its slot and runs again from the top later.

    A BaseException so that a handler's `except Exception` cannot swallow it.
    """

    def __init__(self, until: float | None, wait_for: str | None, reason: str) -> None:
        super().__init__(reason)
        self.until = until
        self.wait_for = wait_for
        self.reason = reason


class LeaseLost(BaseException):
    """Control flow: the store refused a write of this job; `status` says why.

    `LeaseStatus.LOST`: this invocation no longer holds the job (its lease expired and another
    claim took it, or the job ended). `LeaseStatus.CANCEL_REQUESTED`: it still holds the lease,
    but the job was cancelled (or a child failed with fail_fast) and may write nothing more.
    A BaseException so that a handler's `except Exception` cannot swallow it.
    """

    def __init__(self, status: LeaseStatus = LeaseStatus.LOST) -> None:
        self.status = LeaseStatus(status)
        super().__init__(f"write refused: {self.status}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.status,)))
