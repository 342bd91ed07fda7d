"""Exceptions raised by the job scheduler: one family, every class a `SchedulerError`.

```
SchedulerError
    ConfigError (ValueError)             a bad definition or argument
        InvalidStoreURL                  a store URL naming no store (a StoreURLError too)
    PayloadError (TypeError)             a payload or result of the wrong type, or not JSON
    JobNotFound (LookupError)            no job with that id
        ScheduleNotFound                 no schedule with that id (an UnknownScheduleError too)
    JobStateError                        the job's state refuses the operation
        JobKeyConflict                   a retry would give two active jobs one key
    ScheduleStateError                   the schedule's state refuses the operation
    JobFailed                            `result()` of a job that ended without completing
    ResultTimeout (TimeoutError)         `result()` gave up waiting
    SchedulerClosed                      the scheduler stopped while `result()` waited
    StoreFailure                         the store failed (unreachable, locked, not a database)
        StoreSchemaError                 the store was written by a newer wireframe
    HandBackError                        a stopping worker could not write its jobs back
    DurableError                         raised by durable calls inside handlers
        NonDeterminismError, EventTimeout, DeferTimeout, ChildFailed, ChildCancelled,
        NotAChildError, CheckpointNameError
```

The store raises its own errors (`wireframe.store`) and knows nothing of these: the Scheduler
and the Worker translate them where they call it. Each translated class also derives from the
store error it stands for (`JobStateError` is an `InvalidTransitionError`, ...), so code that
catches the store's names still works.
"""

from __future__ import annotations

from typing import Any

from wireframe.durable.errors import (
    ChildCancelled,
    ChildFailed,
    DeferTimeout,
    DurableError,
    EventTimeout,
    NonDeterminismError,
    NotAChildError,
    SchedulerError,
)
from wireframe.durable.run import CheckpointNameError
from wireframe.store.errors import (
    DuplicateKeyError,
    ForeignConnectionError,
    InvalidTransitionError,
    SchemaVersionError,
    StoreError,
    StoreURLError,
    UnknownScheduleError,
)
from wireframe.store.records import JobState

__all__ = [
    "CheckpointNameError",
    "ChildCancelled",
    "ChildFailed",
    "ConfigError",
    "DeferTimeout",
    "DurableError",
    "EventTimeout",
    "ForeignConnection",
    "HandBackError",
    "InvalidStoreURL",
    "JobFailed",
    "JobKeyConflict",
    "JobNotFound",
    "JobStateError",
    "NonDeterminismError",
    "NotAChildError",
    "PayloadError",
    "Permanent",
    "ResultTimeout",
    "ScheduleNotFound",
    "ScheduleStateError",
    "SchedulerClosed",
    "SchedulerError",
    "StoreFailure",
    "StoreSchemaError",
]


def _rebuild(cls: type[BaseException], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Recreate an exception whose ``__init__`` takes keyword arguments (for pickle)."""
    return cls(*args, **kwargs)


class ConfigError(SchedulerError, ValueError):
    """A definition or argument is invalid (bad priority, retry policy, cron, handler...)."""


class ForeignConnection(ConfigError, ForeignConnectionError):
    """A connection given to `submit(connection=...)` that the store cannot write through:
    another database, no transaction open, or a store that keeps no database (memory)."""


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


class InvalidStoreURL(ConfigError, StoreURLError):
    """A store URL that names no known store or is malformed."""


class ScheduleNotFound(JobNotFound, UnknownScheduleError):
    """No recurring schedule with the given id exists.

    A `JobNotFound` too, as `resume_schedule` raised before this class existed; `schedule_id`
    and `job_id` both hold the id.
    """

    def __init__(self, schedule_id: int, message: str | None = None) -> None:
        self.job_id = self.schedule_id = schedule_id
        self.message = message if message is not None else f"no schedule with id {schedule_id}"
        Exception.__init__(self, self.message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.schedule_id, self.message), {}))


class JobStateError(SchedulerError, InvalidTransitionError):
    """The job's state refuses the operation (pause or resume an ended job, retry one that
    has not ended or completed, a child for a parent that has ended...).

    `job_id` is the job refused (None if a batch could not tell which), `state` its state
    when the refusal was reported (None if unknown); the message names both.
    """

    def __init__(self, job_id: int | None, state: JobState | None, message: str) -> None:
        self.job_id = job_id
        self.state = state
        self.message = message
        Exception.__init__(self, message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.job_id, self.state, self.message), {}))


class JobKeyConflict(JobStateError, DuplicateKeyError):
    """A retry would make two active jobs share one dedup key: the message names the holder."""


class ScheduleStateError(SchedulerError, InvalidTransitionError):
    """The schedule's state refuses the operation (pause or resume a schedule that has ended).

    `state` is the schedule's state (`cancelled`, `finished`...), or None if unknown.
    """

    def __init__(self, schedule_id: int, state: str | None, message: str) -> None:
        self.schedule_id = schedule_id
        self.state = state
        self.message = message
        Exception.__init__(self, message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.schedule_id, self.state, self.message), {}))


class ResultTimeout(SchedulerError, TimeoutError):
    """`Scheduler.result` waited `timeout` seconds and the job had not ended."""

    def __init__(self, job_id: int, timeout: float, state: JobState | None) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.state = state
        seen = f" (it is {state})" if state is not None else ""
        super().__init__(f"job {job_id} did not end within {timeout:g} s{seen}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.job_id, self.timeout, self.state), {}))


class SchedulerClosed(SchedulerError):
    """The scheduler stopped (its task ended and closed the store) while `result()` waited."""

    def __init__(self, job_id: int, state: JobState | None) -> None:
        self.job_id = job_id
        self.state = state
        seen = f"; the job is still {state}" if state is not None else ""
        super().__init__(f"the scheduler stopped while waiting for job {job_id}{seen}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), (self.job_id, self.state), {}))


class StoreFailure(SchedulerError, StoreError):
    """The store failed the operation: unreachable, locked too long, not a database, closed.

    The store's own error is the `__cause__`; the message is its message.
    """


class StoreSchemaError(StoreFailure, SchemaVersionError):
    """The database was written by a newer wireframe than this one."""
