"""Durable jobs: checkpointed steps, durable sleep and events, spawn/join, durable values."""

from __future__ import annotations

from wireframe.durable.errors import (
    ChildCancelled,
    ChildFailed,
    DeferTimeout,
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
    "DeferTimeout",
    "DurableError",
    "DurableRun",
    "EventTimeout",
    "LeaseLost",
    "NonDeterminismError",
    "NotAChildError",
    "Suspend",
    "uuid7",
]
