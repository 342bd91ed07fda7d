"""Exceptions raised by the job scheduler."""

from __future__ import annotations

from typing import Any

from wireframe.durable.errors import ChildCancelled, ChildFailed, DeferTimeout, EventTimeout

__all__ = [
    "ChildCancelled",
    "ChildFailed",
    "ConfigError",
    "DeferTimeout",
    "EventTimeout",
    "HandBackError",
    "JobFailed",
    "JobNotFound",
    "PayloadError",
    "Permanent",
    "SchedulerError",
]


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Recreate an exception whose ``__init__`` takes keyword arguments (for pickle)."""
    return cls(*args, **kwargs)


class SchedulerError(Exception):
    """Base class of every error the scheduler raises."""


class ConfigError(SchedulerError, ValueError):
    """A definition or argument is invalid (bad priority, retry policy, cron, handler...)."""


class PayloadError(SchedulerError, TypeError):
    """A payload or result is of the wrong type or cannot be serialised to JSON."""


class Permanent(Exception):
    """Raise in a handler to fail the job at once, without any further retry."""

    def __init__(self, message: str, *, cause: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.message,), {"cause": self.cause}))


class JobNotFound(SchedulerError, LookupError):
    """No job with the given id exists."""

    def __init__(self, job_id: int, message: str | None = None) -> None:
        self.job_id = job_id
        self.message = message if message is not None else f"job {job_id} not found"
        super().__init__(self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.job_id, self.message), {}))


class JobFailed(SchedulerError):
    """Raised by ``Scheduler.result`` when the job ended without completing."""

    def __init__(self, job_id: int, state: str, error: str | None = None) -> None:
        self.job_id = job_id
        self.state = state
        self.error = error
        detail = f": {error}" if error else ""
        super().__init__(f"job {job_id} ended {state}{detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.job_id, self.state, self.error), {}))


class HandBackError(SchedulerError):
    """A stopping worker could not write back the jobs it held (their leases expire instead)."""
