"""Tasks: the runnable units of a service, and wrapping plain async functions as tasks."""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar, TypeAlias

from wireframe.service._validate import check_id
from wireframe.service.errors import ServiceConfigError
from wireframe.service.kinds import TaskKind
from wireframe.service.restart import Restart

if TYPE_CHECKING:
    from wireframe.service.stop import StopReceiver

__all__ = [
    "OneshotTask",
    "Precondition",
    "Task",
    "TaskFn",
    "TaskKind",
    "UnconstrainedOneshotTask",
    "UnconstrainedTask",
]

TaskFn: TypeAlias = Callable[["StopReceiver"], Awaitable[None]]
"""An ``async def fn(stop: StopReceiver) -> None`` usable as a task body."""


class Task(abc.ABC):
    """A long-running unit of a service; when it returns or raises, the service stops."""

    kind: ClassVar[TaskKind] = TaskKind.TASK
    id: str
    """Unique in a service; a class attribute, an instance attribute or a property."""
    restart: Restart | None = None
    """The restart policy: None (the default) lets an ending stop the service as its kind
    says; ``Restart.on_failure()`` or ``Restart.always()`` starts it again after a backoff.
    Set it as a class attribute, or pass ``restart=`` to ``Task.__init__``, ``from_fn`` or
    ``Service.add_task``."""
    stops_last: ClassVar[bool] = False
    """True: this task's stop arrives only once every other task has ended, so it keeps
    serving while they drain (a health server). Its stop then carries the same reason, and it
    has until the service's graceful deadline, and at least ``LAST_STOP_GRACE`` seconds, to
    return."""

    def __init__(self, *, restart: Restart | None = None) -> None:
        if restart is not None:
            self.restart = restart

    async def prepare(self) -> None:
        """Set up what must exist before constrained tasks start (default: nothing).

        The service awaits it just before ``run``, always followed by ``run``. For a task that
        is not constrained, the precondition barrier also waits for it: constrained tasks
        (``Task``, ``OneshotTask``) start only once every unconstrained task's ``prepare`` has
        returned. One that raises fails its task, so the service stops before any constrained
        task starts (a health server binds its port here).
        """
        return None

    @abc.abstractmethod
    async def run(self, stop: StopReceiver) -> None:
        """Do the task's work until ``stop`` is requested (or, for oneshots, until done)."""

    @staticmethod
    def from_fn(
        id: str, fn: TaskFn, kind: TaskKind = TaskKind.TASK, *, restart: Restart | None = None
    ) -> Task:
        """Wrap ``async def fn(stop)`` as a task of the given kind (and restart policy)."""
        check_id("task id", id)
        if not isinstance(kind, TaskKind):
            raise ServiceConfigError(f"task kind must be a TaskKind, got {kind!r}")
        if not callable(fn):
            raise ServiceConfigError(f"task {id!r}: fn must be an async callable, got {fn!r}")
        task = _FN_CLASSES[kind](id, fn)
        if restart is not None:
            task.restart = restart
        return task

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {getattr(self, 'id', '?')!r} ({self.kind.value})>"


class OneshotTask(Task):
    """A constrained task that may return without stopping the service."""

    kind = TaskKind.ONESHOT


class Precondition(Task):
    """Checks an invariant and returns; constrained tasks start only after every one returned."""

    kind = TaskKind.PRECONDITION


class UnconstrainedTask(Task):
    """A long-running task that starts at once, without waiting for preconditions."""

    kind = TaskKind.UNCONSTRAINED


class UnconstrainedOneshotTask(Task):
    """A oneshot that starts at once (e.g. the migration that satisfies a precondition)."""

    kind = TaskKind.UNCONSTRAINED_ONESHOT


class _FnMixin:
    """Body shared by the function-backed task classes."""

    def __init__(self, id: str, fn: TaskFn) -> None:
        self.id = id
        self.fn = fn

    async def run(self, stop: StopReceiver) -> None:
        await self.fn(stop)

    def __repr__(self) -> str:
        kind: TaskKind = getattr(self, "kind", TaskKind.TASK)
        fn_name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"<{kind.value} {self.id!r} from function {fn_name}>"


class _FnTask(_FnMixin, Task):
    pass


class _FnOneshot(_FnMixin, OneshotTask):
    pass


class _FnPrecondition(_FnMixin, Precondition):
    pass


class _FnUnconstrained(_FnMixin, UnconstrainedTask):
    pass


class _FnUnconstrainedOneshot(_FnMixin, UnconstrainedOneshotTask):
    pass


_FN_CLASSES: dict[TaskKind, Callable[[str, TaskFn], Task]] = {
    TaskKind.TASK: _FnTask,
    TaskKind.ONESHOT: _FnOneshot,
    TaskKind.PRECONDITION: _FnPrecondition,
    TaskKind.UNCONSTRAINED: _FnUnconstrained,
    TaskKind.UNCONSTRAINED_ONESHOT: _FnUnconstrainedOneshot,
}
