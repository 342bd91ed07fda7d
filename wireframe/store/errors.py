"""Errors a store raises; each names the value and the place."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of every store error."""


class StoreURLError(StoreError, ValueError):
    """A store URL that names no known store or is malformed."""


class NoStoreError(StoreError):
    """A store opened with `create=False` that does not exist yet (no file, no schema)."""


class SchemaVersionError(StoreError):
    """The database was written by a newer wireframe than this one."""


class UnknownJobError(StoreError, LookupError):
    """A job id that does not exist in the store."""

    def __init__(self, job_id: int, where: str) -> None:
        super().__init__(f"{where}: no job with id {job_id}")
        self.job_id = job_id


class UnknownScheduleError(UnknownJobError):
    """A schedule id that does not exist in the store."""

    def __init__(self, schedule_id: int, where: str) -> None:
        StoreError.__init__(self, f"{where}: no schedule with id {schedule_id}")
        self.job_id = self.schedule_id = schedule_id


class InvalidTransitionError(StoreError):
    """A control operation that does not apply to the job's current state."""


class DuplicateKeyError(StoreError):
    """A retry would make two active jobs share one dedup key."""


class ForeignConnectionError(StoreError, ValueError):
    """A connection handed to the store that it cannot write through: another database, not
    in a transaction, or of a kind the store does not know."""
