"""Durable job storage: the Store protocol and its memory, SQLite and PostgreSQL stores.

`MemoryStore` (`memory://`) keeps jobs in Python objects; `SqliteMemoryStore` is the SQL engine
on a private in-memory SQLite database.
"""

from __future__ import annotations

from wireframe.store.base import Chooser, Observer, Store
from wireframe.store.errors import (
    DuplicateKeyError,
    InvalidTransitionError,
    NoStoreError,
    SchemaVersionError,
    StoreError,
    StoreURLError,
    UnknownJobError,
    UnknownScheduleError,
)
from wireframe.store.memory import MemoryStore
from wireframe.store.postgres import PostgresStore
from wireframe.store.records import (
    ACTIVE_STATES,
    FAR_FUTURE,
    LOST_WORKERS_KEPT,
    TERMINAL_STATES,
    AttemptRecord,
    Beat,
    Checkpoint,
    ClaimRequest,
    Complete,
    Duplicate,
    EventRecord,
    Fail,
    Fired,
    JobRecord,
    JobState,
    JobTypeRecord,
    Lease,
    LeaseStatus,
    NewJob,
    NewJobType,
    NewSchedule,
    Outcome,
    Overlap,
    Release,
    ScheduleRecord,
    SubmitResult,
    Submitted,
    Transition,
    WorkerInfo,
    WorkerRecord,
)
from wireframe.store.sqlite import SqliteMemoryStore, SqliteStore
from wireframe.store.url import store_from_url

__all__ = [
    "ACTIVE_STATES",
    "FAR_FUTURE",
    "LOST_WORKERS_KEPT",
    "TERMINAL_STATES",
    "AttemptRecord",
    "Beat",
    "Checkpoint",
    "Chooser",
    "ClaimRequest",
    "Complete",
    "Duplicate",
    "DuplicateKeyError",
    "EventRecord",
    "Fail",
    "Fired",
    "InvalidTransitionError",
    "JobRecord",
    "JobState",
    "JobTypeRecord",
    "Lease",
    "LeaseStatus",
    "MemoryStore",
    "NewJob",
    "NewJobType",
    "NewSchedule",
    "NoStoreError",
    "Observer",
    "Outcome",
    "Overlap",
    "PostgresStore",
    "Release",
    "ScheduleRecord",
    "SchemaVersionError",
    "SqliteMemoryStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "StoreURLError",
    "SubmitResult",
    "Submitted",
    "Transition",
    "UnknownJobError",
    "UnknownScheduleError",
    "WorkerInfo",
    "WorkerRecord",
    "store_from_url",
]
