"""The scheduler's side of the store boundary: the store's errors become the scheduler's.

The store knows nothing of the scheduler; the Scheduler and the Worker call `scheduler_error`
(or run the call inside `store_errors()`) wherever they call the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wireframe.scheduler.errors import (
    ForeignConnection,
    InvalidStoreURL,
    JobKeyConflict,
    JobNotFound,
    JobStateError,
    ScheduleNotFound,
    SchedulerError,
    ScheduleStateError,
    StoreFailure,
    StoreSchemaError,
)
from wireframe.store.errors import (
    DuplicateKeyError,
    ForeignConnectionError,
    InvalidTransitionError,
    SchemaVersionError,
    StoreError,
    StoreURLError,
    UnknownJobError,
    UnknownScheduleError,
)
from wireframe.store.records import JobState


@contextmanager
def store_errors() -> Iterator[None]:
    """Raise the store's errors as the scheduler's (`scheduler_error`) inside the block."""
    try:
        yield
    except StoreError as exc:
        raise scheduler_error(exc) from exc


def scheduler_error(
    exc: StoreError,
    *,
    job_id: int | None = None,
    state: JobState | None = None,
    schedule_id: int | None = None,
    schedule_state: str | None = None,
) -> SchedulerError:
    """The scheduler's error for a store's: the refusal of an operation on `job_id` (in
    `state`) or on `schedule_id` (in `schedule_state`), or a failure of the store itself.

    An error that already is a `SchedulerError` comes back as it is.
    """
    if isinstance(exc, SchedulerError):
        return exc
    message = str(exc)
    if isinstance(exc, UnknownScheduleError):
        return ScheduleNotFound(exc.schedule_id, message)
    if isinstance(exc, UnknownJobError):
        return JobNotFound(exc.job_id, message)
    if isinstance(exc, InvalidTransitionError):
        if schedule_id is not None:
            return ScheduleStateError(schedule_id, schedule_state, message)
        return JobStateError(job_id, state, message)
    if isinstance(exc, DuplicateKeyError):
        return JobKeyConflict(job_id, state, message)
    if isinstance(exc, SchemaVersionError):
        return StoreSchemaError(message)
    if isinstance(exc, ForeignConnectionError):
        return ForeignConnection(message)
    if isinstance(exc, StoreURLError):
        return InvalidStoreURL(message)
    return StoreFailure(message)
