"""Service: a set of tasks run together until stop, then shut down with hooks."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import anyio
import anyio.from_thread
import anyio.lowlevel

from wireframe.service._runtime import Runtime
from wireframe.service._supervise import check_policy
from wireframe.service._validate import check_id, check_timeout
from wireframe.service.errors import ServiceConfigError, ServiceError
from wireframe.service.hooks import ShutdownHook
from wireframe.service.log import (
    LogFormat,
    configure_logging,
    log_context,
    logger,
    service_running,
)
from wireframe.service.restart import Restart
from wireframe.service.signals import can_handle_signals, watch_signals
from wireframe.service.status import ServicePhase, ServiceStatus, TaskState, TaskStatus
from wireframe.service.stop import StopReason, StopReasonKind
from wireframe.service.task import Task, TaskFn, TaskKind
from wireframe.service.wiring import WiringLayer

F = TypeVar("F", bound=TaskFn)


class Service:
    """A long-running service made of tasks, hooks and wiring layers.

    ``graceful_timeout`` is the seconds tasks get to return once they are told to stop, before
    they are cancelled. ``stop_delay`` (default 0) is the seconds a ready service keeps serving
    after a stop is requested, before its tasks are told to stop: readiness (``/ready``) drops
    at once, so load balancers can take it out of rotation first. The delay comes before the
    graceful timeout (it is not counted in it); a forced stop (a second signal) ends it at once.
    """

    def __init__(
        self,
        name: str = "service",
        *,
        graceful_timeout: float = 30.0,
        handle_signals: bool = True,
        stop_delay: float = 0.0,
    ) -> None:
        self.name: str = check_id("service name", name)
        self.graceful_timeout: float = check_timeout("graceful_timeout", graceful_timeout)
        self.stop_delay: float = check_timeout("stop_delay", stop_delay, finite=True)
        self.handle_signals = bool(handle_signals)
        self._tasks: dict[str, Task] = {}
        self._policies: dict[str, Restart] = {}  # restart policies by task id
        self._hooks: list[ShutdownHook] = []
        self._layers: list[WiringLayer] = []
        self._runtime: Runtime | None = None
        self._pending_stop: StopReason | None = None
        self._pending_force = False
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None

    def __repr__(self) -> str:
        return f"<Service {self.name!r} {self.status().phase.value}, {len(self._tasks)} tasks>"

    # ----- building -----

    def add_task(self, task: Task, *, restart: Restart | None = None) -> Service:
        """Add a task (its id must be unique), with a restart policy if given (else the
        task's own ``restart``); returns the service."""
        self._add_task(task, layer=None, restart=restart)
        return self

    def add_shutdown_hook(self, hook: ShutdownHook) -> Service:
        """Add a hook run after the tasks stop, in the order added; returns the service."""
        self._add_hook(hook, layer=None)
        return self

    def add_layer(self, layer: WiringLayer) -> Service:
        """Add a wiring layer, wired in the order added when ``run`` starts; returns the service.

        Adding a layer of the same type and name again is ignored (it is wired once).
        """
        self._check_not_started(f"add layer {layer!r}")
        if not isinstance(layer, WiringLayer):
            raise ServiceConfigError(f"add_layer expects a WiringLayer, got {layer!r}")
        name = check_id(f"name of wiring layer {layer!r}", getattr(layer, "name", None))
        for existing in self._layers:
            if existing.name == name:
                if type(existing) is type(layer):
                    return self
                raise ServiceConfigError(
                    f"duplicate wiring layer name {name!r}: {layer!r} and {existing!r}"
                )
        self._layers.append(layer)
        return self

    def task(
        self,
        id: str | None = None,
        *,
        kind: TaskKind = TaskKind.TASK,
        restart: Restart | None = None,
    ) -> Callable[[F], F]:
        """Decorator adding ``async def fn(stop)`` as a task (id defaults to its name)."""

        def decorate(fn: F) -> F:
            if not _is_async(fn):
                raise ServiceConfigError(f"@service.task expects an async function, got {fn!r}")
            task = Task.from_fn(id if id is not None else fn.__name__, fn, kind)
            self.add_task(task, restart=restart)
            return fn

        if callable(id):
            raise ServiceConfigError(
                f"use @service.task() with parentheses (got {id!r} as the task id)"
            )
        return decorate

    def _check_not_started(self, what: str) -> None:
        if self._runtime is not None and self._runtime.phase is not ServicePhase.WIRING:
            raise ServiceConfigError(f"cannot {what}: service {self.name!r} already started")

    def _add_task(self, task: object, layer: str | None, restart: Restart | None = None) -> None:
        self._check_not_started(f"add task {task!r}")
        if not isinstance(task, Task):
            hint = " (wrap it with Task.from_fn or @service.task)" if _is_async(task) else ""
            raise ServiceConfigError(f"add_task expects a Task, got {task!r}{hint}")
        id = check_id(f"id of task {type(task).__qualname__}", getattr(task, "id", None))
        if not isinstance(getattr(type(task), "kind", None), TaskKind):
            raise ServiceConfigError(f"task {id!r}: kind must be a TaskKind")
        if id in self._tasks:
            raise ServiceConfigError(
                f"duplicate task id {id!r}: {task!r} conflicts with {self._tasks[id]!r}"
            )
        policy = check_policy(id, task.kind, restart or getattr(task, "restart", None))
        self._tasks[id] = task
        if policy is not None:
            self._policies[id] = policy
        logger.debug("service %r: added %r%s", self.name, task, f" from {layer!r}" if layer else "")

    def _add_hook(self, hook: ShutdownHook, layer: str | None) -> None:
        self._check_not_started(f"add shutdown hook {hook!r}")
        if not isinstance(hook, ShutdownHook):
            raise ServiceConfigError(f"add_shutdown_hook expects a ShutdownHook, got {hook!r}")
        if any(h.id == hook.id for h in self._hooks):
            raise ServiceConfigError(f"duplicate shutdown hook id {hook.id!r}")
        self._hooks.append(hook)

    # ----- running -----

    def stop(self, reason: str | None = None, *, force: bool = False) -> None:
        """Request a graceful stop; callable from any thread, also before ``run`` starts.

        ``force=True`` forces it, as a second signal does: running tasks and the hook running
        are cancelled at once and the hooks not yet run are skipped. Managed resources
        (``ServiceContext.provide_managed``) are still closed, each within its own timeout.
        """
        request = StopReason(StopReasonKind.REQUESTED, message=reason)
        if force:
            logger.warning("service %r: forcing the stop (%s)", self.name, request)
        runtime = self._runtime
        if runtime is None:
            self._pending_stop = self._pending_stop or request
            self._pending_force = self._pending_force or force
            return
        act = runtime.force if force else runtime.request_stop
        if self._loop_thread == threading.get_ident() or self._token is None:
            act(request)
        else:
            try:
                anyio.from_thread.run_sync(act, request, token=self._token)
            except RuntimeError:  # the event loop is gone: the run is over
                pass

    def status(self) -> ServiceStatus:
        """Snapshot the phase, readiness, stop reason and every task's state and timings."""
        if self._runtime is not None:
            return self._runtime.status()
        return ServiceStatus(
            name=self.name,
            phase=ServicePhase.CREATED,
            ready=False,
            stop_reason=self._pending_stop,
            tasks=tuple(
                TaskStatus(t.id, t.kind, TaskState.PENDING, supervised=t.id in self._policies)
                for t in self._tasks.values()
            ),
        )

    async def run(self) -> None:
        """Run until stop; return None after a clean stop, raise ServiceError on failures.

        Bad configuration raises ServiceConfigError before any task starts: a WiringError
        naming every layer that failed (each layer is wired even after one failed).
        A service runs once. With ``handle_signals`` (and on the main thread) SIGINT/SIGTERM
        request a graceful stop and a second one forces it.
        """
        if self._runtime is not None:
            raise ServiceConfigError(f"service {self.name!r} was already started")
        runtime = self._runtime = Runtime(self)
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        with log_context(service=self.name), service_running(self.name):
            await self._run(runtime)

    async def _run(self, runtime: Runtime) -> None:
        if self._pending_stop is not None:
            runtime.request_stop(self._pending_stop)
            if self._pending_force:
                runtime.force(self._pending_stop)
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            if self.handle_signals and can_handle_signals():
                await tg.start(watch_signals, self._on_signal, self._on_second_signal)
            try:
                await runtime.run()
            except (ServiceConfigError, ServiceError) as exc:
                error = exc
            finally:
                tg.cancel_scope.cancel()
        if error is not None:
            raise error

    def _on_signal(self, name: str) -> None:
        assert self._runtime is not None
        self._runtime.request_stop(StopReason(StopReasonKind.SIGNAL, signal=name))

    def _on_second_signal(self, name: str) -> None:
        assert self._runtime is not None
        self._runtime.force(StopReason(StopReasonKind.SIGNAL, signal=name))

    def run_sync(
        self,
        backend: Literal["asyncio", "trio"] = "asyncio",
        *,
        backend_options: dict[str, Any] | None = None,
        log_level: int = logging.INFO,
        log_format: LogFormat | None = None,
    ) -> int:
        """Blocking entry point for ``main.py``: set up logging, run, return an exit code.

        Logging is set up as ``wireframe`` commands do, unless the root logger already has a
        handler: ``log_format`` (else ``$WIREFRAME_LOG_FORMAT``, else auto: rich on a terminal,
        JSON lines when stderr is not one). Returns 0 after a clean stop and 1 on failure (task
        or hook failures, bad configuration), or ``ServiceError.exit_code`` when a task or hook
        raised ``SystemExit(n)`` (n) or ``KeyboardInterrupt`` (130): the service has still
        stopped gracefully and run its hooks. Use as ``raise SystemExit(service.run_sync())``.
        """
        with log_context(service=self.name):
            configure_logging(log_level, log_format)
            return self._run_sync(backend, backend_options)

    def _run_sync(
        self, backend: Literal["asyncio", "trio"], backend_options: dict[str, Any] | None
    ) -> int:
        try:
            anyio.run(self.run, backend=backend, backend_options=backend_options)
        except ServiceError as exc:
            return exc.exit_code  # already logged with the summary
        except ServiceConfigError as exc:
            logger.error("service %r did not start: %s", self.name, exc)
            return 1
        return 0


def _is_async(fn: object) -> bool:
    return inspect.iscoroutinefunction(fn)
