"""Snapshots of a service and its tasks, returned by ``Service.status()``."""

from __future__ import annotations

import enum

import attrs

from wireframe.service.kinds import TaskKind
from wireframe.service.stop import StopReason


class ServicePhase(enum.Enum):
    """Where a service is in its lifecycle."""

    CREATED = "created"
    WIRING = "wiring"
    STARTING = "starting"
    READY = "ready"
    STOPPING = "stopping"
    STOPPED = "stopped"


class TaskState(enum.Enum):
    """Where one task is in its lifecycle."""

    PENDING = "pending"
    """Added; the service has not started it yet."""
    WAITING = "waiting"
    """Constrained, waiting for every precondition to return."""
    RUNNING = "running"
    RESTARTING = "restarting"
    """Supervised: its run ended (see ``last_error``); it starts again after a backoff."""
    STOPPING = "stopping"
    """Running after a stop was requested."""
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"
    """Cancelled because it did not stop in time (or by a forced stop)."""
    SKIPPED = "skipped"
    """Never started, or a supervised task not restarted: stop arrived before its turn (not
    an error)."""


@attrs.frozen
class TaskStatus:
    """One task's state and timings (wall-clock epoch seconds; duration in seconds).

    For a supervised task, ``started_at`` and ``duration`` are those of its latest run,
    ``restarts`` counts its restarts, ``last_error`` describes the latest failed run (also
    once it runs again) and ``restart_at`` is when it starts again while ``restarting``.
    ``error`` is set only for the failure that ended the task.
    """

    id: str
    kind: TaskKind
    state: TaskState
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    error: str | None = None
    restarts: int = 0
    last_error: str | None = None
    restart_at: float | None = None
    supervised: bool = False
    """True if the task has a restart policy."""


@attrs.frozen
class HookStatus:
    """One shutdown hook's outcome once it ran (state is pending, finished, failed or cancelled)."""

    id: str
    state: TaskState
    duration: float | None = None
    error: str | None = None


@attrs.frozen
class ResourceStatus:
    """One managed resource: running while open, then finished, failed or cancelled (timed out)."""

    id: str
    layer: str
    state: TaskState
    duration: float | None = None
    error: str | None = None


@attrs.frozen
class ServiceStatus:
    """A snapshot of a service: phase, readiness, stop reason, tasks, hooks and resources.

    ``in_stop_delay`` is True while a stopping service waits out its ``stop_delay``: not
    ready, its tasks still running and not yet told to stop.
    """

    name: str
    phase: ServicePhase
    ready: bool
    stop_reason: StopReason | None
    tasks: tuple[TaskStatus, ...]
    hooks: tuple[HookStatus, ...] = ()
    resources: tuple[ResourceStatus, ...] = ()
    """Managed resources in the order they were opened (closed in reverse)."""
    in_stop_delay: bool = False

    def task(self, id: str) -> TaskStatus:
        """Return the status of the task named ``id`` (KeyError if there is none)."""
        for t in self.tasks:
            if t.id == id:
                return t
        raise KeyError(id)

    def count(self, state: TaskState) -> int:
        """Return how many tasks are in ``state``."""
        return sum(1 for t in self.tasks if t.state is state)
