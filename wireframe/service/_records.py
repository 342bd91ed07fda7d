"""The mutable bookkeeping of a run: one record per task, and the stages tasks stop in."""

from __future__ import annotations

import time

import anyio

from wireframe.service._failures import describe
from wireframe.service._supervise import Supervisor
from wireframe.service.kinds import TaskKind
from wireframe.service.restart import Restart
from wireframe.service.status import TaskState, TaskStatus
from wireframe.service.stop import StopReceiver
from wireframe.service.task import Task

_WALL_OFFSET = time.time() - time.monotonic()  # wall-clock timestamps from one monotonic read


class TaskRecord:
    """The mutable bookkeeping of one task during a run."""

    __slots__ = (
        "description",
        "duration",
        "error",
        "finished_at",
        "id",
        "kind",
        "last_error",
        "prepared",
        "prepares",
        "restart_at",
        "started_at",
        "state",
        "stops_last",
        "supervisor",
        "t0",
        "task",
    )

    def __init__(self, task: Task, policy: Restart | None = None) -> None:
        self.task = task
        self.id: str = task.id
        self.kind: TaskKind = task.kind
        self.stops_last = bool(getattr(task, "stops_last", False))
        self.prepares = getattr(type(task), "prepare", Task.prepare) is not Task.prepare
        self.state = TaskState.PENDING
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.t0 = 0.0
        self.duration: float | None = None
        self.error: BaseException | None = None
        self.description: str | None = None
        self.supervisor = None if policy is None else Supervisor(policy)
        self.prepared = False  # prepare() returned once (a restart does not count it again)
        self.last_error: str | None = None
        self.restart_at: float | None = None  # wall clock, while restarting

    def start(self) -> None:
        self.state = TaskState.RUNNING
        self.t0 = time.monotonic()
        self.started_at = self.t0 + _WALL_OFFSET

    def backing_off(self, error: BaseException | None, delay: float) -> None:
        """The run ended and the task starts again in ``delay`` seconds."""
        self.finish(TaskState.RESTARTING, error)
        self.error = None
        if self.description is not None:
            self.last_error, self.description = self.description, None
        assert self.finished_at is not None
        self.restart_at = self.finished_at + delay

    def restart(self) -> None:
        """The backoff is over: a new run begins."""
        self.restart_at = self.finished_at = self.duration = None
        self.start()

    def finish(self, state: TaskState, error: BaseException | None = None) -> None:
        now = time.monotonic()
        self.state = state
        self.error = error
        self.description = None if error is None else describe(error)
        self.duration = now - self.t0
        self.finished_at = now + _WALL_OFFSET

    def snapshot(self, stopping: bool) -> TaskStatus:
        state = self.state
        if stopping and state is TaskState.RUNNING:
            state = TaskState.STOPPING
        duration = self.duration
        if duration is None and self.started_at is not None:
            duration = time.monotonic() - self.t0
        return TaskStatus(
            id=self.id,
            kind=self.kind,
            state=state,
            started_at=self.started_at,
            finished_at=self.finished_at,
            duration=duration,
            error=self.description,
            restarts=0 if self.supervisor is None else self.supervisor.restarts,
            last_error=self.last_error,
            restart_at=self.restart_at,
            supervised=self.supervisor is not None,
        )


class Stage:
    """Tasks that share one stop receiver: the service's tasks, or those that stop last."""

    def __init__(self, records: list[TaskRecord], stop: StopReceiver) -> None:
        self.records = records
        self.stop = stop
        self.alive = len(records)
        self.done = anyio.Event()
        if not records:
            self.done.set()

    def ended(self) -> None:
        """One of the stage's tasks has ended."""
        self.alive -= 1
        if self.alive == 0:
            self.done.set()
