"""One job while a worker holds it, and why a worker may ask its handler to stop."""

from __future__ import annotations

import enum
import math
import os
import socket
from typing import Any

import anyio

from wireframe.scheduler.domain import JobType
from wireframe.store import JobRecord
from wireframe.store.transactional import Lent


class Interrupt(enum.Enum):
    """Why a worker asks a running handler to stop (its `ctx.cancelled` turns True)."""

    CANCELLED = "cancelled"
    """Cancelled by request, or its parent failed fast: the job ends `cancelled`."""
    PAUSED = "paused"
    """Paused by request: the job waits, `paused`, for a resume."""
    PREEMPTED = "preempted"
    """A job of higher priority needs the slot: back to `pending`."""
    SHUTDOWN = "shutdown"
    """The worker stops: back to `pending`, durable checkpoints kept, no attempt spent."""
    LEASE_LOST = "lease_lost"
    """Another worker holds the job now: its outcome here is dropped."""

    @property
    def overrides(self) -> bool:
        """True for the reasons that replace one given before (the job is no longer ours)."""
        return self is Interrupt.LEASE_LOST or self is Interrupt.SHUTDOWN


def default_worker_id() -> str:
    """`hostname-pid`."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Running:
    """Book-keeping of one job from its claim until its outcome is queued."""

    __slots__ = (
        "deferred",
        "job_type",
        "lease_deadline",
        "message",
        "progress",
        "progress_due",
        "record",
        "scope",
        "started",
        "stop_reason",
        "txn",
    )

    def __init__(
        self,
        record: JobRecord,
        job_type: JobType[Any, Any] | None,
        started: float,
        lease_deadline: float,
    ) -> None:
        self.record = record
        self.job_type = job_type
        self.scope: anyio.CancelScope | None = None
        """The cancel scope of its handler while the handler runs."""
        self.stop_reason: Interrupt | None = None
        self.progress: float | None = None
        self.message: str | None = None
        self.progress_due = False
        """True from a progress change until a beat carries it to the store."""
        self.started = started
        """Wall-clock time of the claim."""
        self.lease_deadline = lease_deadline
        """Monotonic time by which the lease surely holds (counted from before the claim or
        the last renewal was sent)."""
        self.deferred = False
        self.txn: Lent | None = None
        """The handler's transaction, waiting to commit with its completion
        (`wireframe.scheduler._transaction`)."""

    @property
    def stopping(self) -> bool:
        """True once the worker asked the handler to stop."""
        return self.stop_reason is not None

    def report_progress(self, fraction: float, message: str | None) -> bool:
        """Keep the latest progress for the next beat of this job; True if none was due yet."""
        self.progress = fraction
        self.message = message
        if self.progress_due:
            return False
        self.progress_due = True
        return True

    def interrupt(self, reason: Interrupt, grace: float = 0.0) -> None:
        """Ask the handler to stop: `ctx.cancelled` now, cancellation after `grace` seconds."""
        if self.stop_reason is None or reason.overrides:
            self.stop_reason = reason
        scope = self.scope
        if scope is not None:
            deadline = anyio.current_time() + grace
            if deadline < scope.deadline:
                scope.deadline = deadline

    def clear_deadline(self, scope: anyio.CancelScope) -> None:
        """The handler has ended: its runner's scope serves the next job without a deadline."""
        self.scope = None
        if scope.deadline != math.inf:
            scope.deadline = math.inf
