"""Durable job storage: the Store protocol and its memory and SQLite implementations."""

from __future__ import annotations

from wireframe.store.base import Chooser, Store
from wireframe.store.errors import (
    DuplicateKeyError,
    InvalidTransitionError,
    SchemaVersionError,
    StoreError,
    StoreURLError,
    UnknownJobError,
    UnknownScheduleError,
)
from wireframe.store.records import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    AttemptRecord,
    Beat,
    ClaimRequest,
    Complete,
    Duplicate,
    Fail,
    Fired,
    JobRecord,
    JobState,
    Lease,
    LeaseStatus,
    NewJob,
    NewSchedule,
    Outcome,
    Release,
    ScheduleRecord,
    SubmitResult,
    Submitted,
)
from wireframe.store.sqlite import MemoryStore, SqliteStore
from wireframe.store.url import store_from_url

__all__ = [
    "ACTIVE_STATES",
    "TERMINAL_STATES",
    "AttemptRecord",
    "Beat",
    "Chooser",
    "ClaimRequest",
    "Complete",
    "Duplicate",
    "DuplicateKeyError",
    "Fail",
    "Fired",
    "InvalidTransitionError",
    "JobRecord",
    "JobState",
    "Lease",
    "LeaseStatus",
    "MemoryStore",
    "NewJob",
    "NewSchedule",
    "Outcome",
    "Release",
    "ScheduleRecord",
    "SchemaVersionError",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreURLError",
    "SubmitResult",
    "Submitted",
    "UnknownJobError",
    "UnknownScheduleError",
    "store_from_url",
]
