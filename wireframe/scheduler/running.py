"""The book-keeping of a job while a worker runs it, and how a worker shuts down."""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Any

import anyio
import attrs

from wireframe.scheduler.domain import JobType
from wireframe.scheduler.errors import ConfigError
from wireframe.store import JobRecord


@attrs.frozen
class ShutdownMode:
    """How a worker stops: let running jobs finish for `seconds`, then put the rest back."""

    seconds: float

    @classmethod
    def graceful(cls, seconds: float = 20.0) -> ShutdownMode:
        """Stop claiming; give running jobs up to `seconds` to finish, then release the rest."""
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not seconds >= 0
            or math.isinf(seconds)
        ):
            raise ConfigError(
                f"ShutdownMode.graceful(seconds) must be a finite number >= 0, got {seconds!r}"
            )
        return cls(float(seconds))

    @classmethod
    def hard(cls) -> ShutdownMode:
        """Cancel running handlers at once and put their jobs back to pending."""
        return cls(0.0)


def default_worker_id() -> str:
    """`hostname-pid`."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Running:
    """Book-keeping of one job while a runner executes it."""

    __slots__ = (
        "deferred",
        "job_type",
        "message",
        "progress",
        "record",
        "scope",
        "started",
        "stop_reason",
    )

    def __init__(self, record: JobRecord, job_type: JobType[Any, Any] | None) -> None:
        self.record = record
        self.job_type = job_type
        self.scope: anyio.CancelScope | None = None
        self.stop_reason: str | None = None
        self.progress: float | None = None
        self.message: str | None = None
        self.started = time.time()
        self.deferred = False

    def interrupt(self, reason: str, grace: float = 0.0) -> None:
        """Ask the handler to stop: `ctx.cancelled` now, cancellation after `grace` seconds."""
        if self.stop_reason is None or reason in ("lease_lost", "shutdown"):
            self.stop_reason = reason
        if self.scope is not None:
            deadline = anyio.current_time() + grace
            if deadline < self.scope.deadline:
                self.scope.deadline = deadline
