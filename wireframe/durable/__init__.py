"""Durable jobs: checkpointed steps, durable sleep and events, spawn/join, durable values."""

from __future__ import annotations

from wireframe.durable.errors import (
    ChildCancelled,
    ChildFailed,
    DurableError,
    EventTimeout,
    LeaseLost,
    NonDeterminismError,
    NotAChildError,
    Suspend,
)
from wireframe.durable.run import CheckpointNameError, ChildHandle, DurableRun, uuid7

__all__ = [
    "CheckpointNameError",
    "ChildCancelled",
    "ChildFailed",
    "ChildHandle",
    "DurableError",
    "DurableRun",
    "EventTimeout",
    "LeaseLost",
    "NonDeterminismError",
    "NotAChildError",
    "Suspend",
    "uuid7",
]
