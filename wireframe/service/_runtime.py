"""One run of a service: wiring, the precondition barrier, task supervision, shutdown hooks."""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import anyio

from wireframe.service._failures import describe, must_propagate
from wireframe.service._records import Stage, TaskRecord
from wireframe.service._resources import close_all
from wireframe.service.errors import (
    ServiceConfigError,
    ServiceError,
    ServiceFailure,
    ShutdownHookFailedError,
    ShutdownHookTimeoutError,
    TaskFailedError,
    TaskNotStoppedError,
    WiringError,
)
from wireframe.service.hooks import ShutdownHook
from wireframe.service.kinds import TaskKind
from wireframe.service.log import current_task, log_stop_summary, logger, summary_counts
from wireframe.service.restart import Restart
from wireframe.service.status import (
    HookStatus,
    ServicePhase,
    ServiceStatus,
    TaskState,
    TaskStatus,
)
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.service.systemd import SystemdNotifier
from wireframe.service.task import Task
from wireframe.service.wiring import Resources, ServiceContext, WiringLayer

VERBOSE_TASK_LIMIT = 100
"""Services with more tasks log each task's start and end at DEBUG instead of INFO."""

_ALL_DONE = StopReasonKind.ALL_DONE

LAST_STOP_GRACE = 1.0
"""Seconds a task that stops last has, at least, to return once its stop arrives."""


class ServiceLike(Protocol):
    """What a run needs of its Service (a Protocol, so this module needs not import it)."""

    @property
    def name(self) -> str:
        """The service's name."""

    @property
    def graceful_timeout(self) -> float:
        """Seconds tasks get to return after stop before they are cancelled."""

    @property
    def stop_delay(self) -> float:
        """Seconds a ready service keeps serving, not ready, before its tasks are told to stop."""

    @property
    def _tasks(self) -> dict[str, Task]: ...

    @property
    def _policies(self) -> dict[str, Restart]: ...

    @property
    def _hooks(self) -> list[ShutdownHook]: ...

    @property
    def _layers(self) -> list[WiringLayer]: ...

    def _add_task(self, task: Task, layer: str | None, restart: Restart | None = None) -> None: ...

    def _add_hook(self, hook: ShutdownHook, layer: str | None) -> None: ...


def _caused_by(error: WiringError, cause: BaseException) -> WiringError:
    error.__cause__ = cause
    return error


class Runtime:
    """Runs a service once; created by ``Service.run`` inside the event loop."""

    def __init__(self, service: ServiceLike) -> None:
        self.service = service
        self.name = service.name
        self.stop = StopReceiver()
        self._phase = ServicePhase.WIRING
        self.phase_changed = anyio.Event()  # set at the next phase change, then replaced
        self.records: list[TaskRecord] = []
        self.hook_status: list[HookStatus] = []
        self.gate = anyio.Event()  # set when the barrier is released or stop is requested
        self.main = self.last = Stage([], self.stop)
        self.barrier_released = False
        self.preconditions_left = 0
        self.prepares_left = 0  # unconstrained tasks whose prepare() has not returned yet
        self.constrained_unstarted = 0
        self.alive = 0
        self.cancelled_by_force = False
        self.tasks_scope: anyio.CancelScope | None = None
        self.hook_scope: anyio.CancelScope | None = None
        self.level = logging.INFO
        self.log_each = True
        self.hook_failures: list[ServiceFailure] = []
        self.resources = Resources()
        self.resource_failures: list[ServiceFailure] = []
        self.notifier: SystemdNotifier | None = None  # added when NOTIFY_SOCKET is set
        self.requested: StopReason | None = None  # the stop requested, even during the delay
        self.stopping = anyio.Event()  # set when a stop is requested, delayed or not
        self.delay_until: float | None = None  # set during the stop delay (anyio time)
        self.delay_scope: anyio.CancelScope | None = None

    @property
    def phase(self) -> ServicePhase:
        """Where the run is; setting a new phase sets ``phase_changed`` (then a fresh one)."""
        return self._phase

    @phase.setter
    def phase(self, phase: ServicePhase) -> None:
        if phase is not self._phase:
            self._phase = phase
            changed, self.phase_changed = self.phase_changed, anyio.Event()
            changed.set()

    # ----- stop -----

    def request_stop(self, reason: StopReason) -> None:
        """Request a graceful stop (first reason wins).

        A ready service with a ``stop_delay`` is no longer ready at once but keeps serving for
        that delay before its tasks are told to stop (and their graceful timeout starts).
        """
        if self.requested is not None:
            return
        self.requested = reason
        delay = self.service.stop_delay
        if delay > 0 and self.phase is ServicePhase.READY and reason.kind is not _ALL_DONE:
            self.phase = ServicePhase.STOPPING
            self.delay_until = anyio.current_time() + delay
            self.stopping.set()
            logger.info(
                "service %r stopping: %s; not ready, serving %g s more (stop delay) "
                "before its tasks stop",
                self.name,
                reason,
                delay,
            )
            return
        self._begin_stop(reason)

    def _begin_stop(self, reason: StopReason) -> None:
        """Tell the tasks to stop; they have the graceful timeout from now."""
        self.delay_until = None
        deadline = anyio.current_time() + self.service.graceful_timeout
        if not self.stop._request(reason, deadline):
            return
        self.stopping.set()
        self.gate.set()
        if self.phase in (ServicePhase.WIRING, ServicePhase.STARTING, ServicePhase.READY):
            self.phase = ServicePhase.STOPPING
        logger.info("service %r stopping: %s", self.name, reason)

    def force(self, reason: StopReason) -> None:
        """Stop now: cancel running tasks and hooks, skip the hooks not yet run."""
        self.request_stop(reason)
        if self.delay_until is not None and self.requested is not None:
            logger.warning("service %r: stop delay cut short by a forced stop", self.name)
            if self.delay_scope is not None:
                self.delay_scope.cancel()
            self._begin_stop(self.requested)
        self.stop._force(anyio.current_time())
        if self.tasks_scope is not None and not self.tasks_scope.cancel_called:
            self.cancelled_by_force = True
            self.tasks_scope.cancel()
        if self.hook_scope is not None:
            self.hook_scope.cancel()

    # ----- the run -----

    async def run(self) -> None:
        """Wire, run the tasks until stop, run the hooks, close the resources; raise
        ServiceError on failures. A run that ends early (bad wiring, no tasks, cancelled)
        still closes the resources it opened, and raises what ended it (with a note for
        each resource that failed to close)."""
        try:
            await self._run()
        except GeneratorExit:  # the coroutine is being closed: nothing may be awaited
            raise
        except BaseException as exc:
            for failure in await close_all(self.resources.managed):  # empty if closed already
                exc.add_note(str(failure))
            raise

    async def _run(self) -> None:
        await self._wire()
        service = self.service
        if not service._tasks:
            raise ServiceConfigError(f"service {self.name!r} has no tasks")
        if not self.stop.stopped:
            self.notifier = SystemdNotifier.from_env(
                self, service.stop_delay + service.graceful_timeout
            )
            if self.notifier is not None:  # NOTIFY_SOCKET is set: systemd runs us
                service._add_task(self.notifier, layer=None)
        policies = service._policies
        self.records = [TaskRecord(t, policies.get(t.id)) for t in service._tasks.values()]
        self.alive = len(self.records) - (self.notifier is not None)  # it never ends a run
        self.main = Stage([r for r in self.records if not r.stops_last], self.stop)
        self.last = Stage([r for r in self.records if r.stops_last], StopReceiver())
        self.preconditions_left = sum(r.kind is TaskKind.PRECONDITION for r in self.records)
        self.prepares_left = sum(r.prepares and not r.kind.constrained for r in self.records)
        self.constrained_unstarted = sum(r.kind.constrained for r in self.records)
        self.level = logging.INFO if len(self.records) <= VERBOSE_TASK_LIMIT else logging.DEBUG
        self.log_each = logger.isEnabledFor(self.level)
        if self.phase is ServicePhase.WIRING:
            self.phase = ServicePhase.STARTING
        logger.info(
            "service %r starting %d tasks (%d preconditions)",
            self.name,
            len(self.records),
            self.preconditions_left,
        )
        if self.stop.stopped:
            for rec in self.records:
                rec.state = TaskState.SKIPPED
        else:
            await self._run_tasks()
        self.phase = ServicePhase.STOPPING
        await self._run_hooks(list(service._hooks))
        self.resource_failures = await close_all(self.resources.managed)
        self.phase = ServicePhase.STOPPED
        failures = self._failures()
        status = self.status()
        if failures:
            message = f"service {self.name!r} failed: " + "; ".join(str(f) for f in failures)
            log_stop_summary(logging.ERROR, message, status)
            raise ServiceError(message, failures, self.stop.reason)
        reason = self.stop.reason or "stopped"
        text = f"service {self.name!r} stopped cleanly ({reason}): {summary_counts(status)}"
        log_stop_summary(logging.INFO, text, status)

    async def _wire(self) -> None:
        """Wire every layer in the order added; raise one WiringError naming each that failed.

        A failing layer does not stop the wiring: the later layers are still wired, so one run
        reports every broken layer. A later layer may then fail only for want of a resource the
        failed one never provided; that MissingResourceError is reported too, in its place, and
        the combined message says it may follow from the earlier failure.
        """
        failures: list[WiringError] = []
        for layer in self.service._layers:
            error = await self._wire_layer(layer, self.resources)
            if error is not None:
                failures.append(error)
        if failures:
            raise WiringError.combine(failures)

    async def _wire_layer(self, layer: WiringLayer, resources: Resources) -> WiringError | None:
        name = layer.name
        logger.debug("service %r: wiring layer %r", self.name, name)
        try:
            await layer.wire(ServiceContext(self.service, resources, name))
        except WiringError as exc:
            return exc
        except ServiceConfigError as exc:  # e.g. a duplicate task id added by the layer
            return _caused_by(WiringError(name, str(exc)), exc)
        except Exception as exc:
            return _caused_by(WiringError(name, f"wire() raised {exc!r}"), exc)
        return None

    async def _run_tasks(self) -> None:
        """Run the tasks: those that stop last get their stop once the others have ended."""
        await self._run_stage(self.last, self._run_main)

    async def _run_main(self) -> None:
        await self._run_stage(self.main, self._until_stop)
        self._stop_last()

    async def _until_stop(self) -> None:
        if self._barrier_open():
            self._release_barrier()
        self._check_ready()
        await self.stopping.wait()
        if self.delay_until is not None:  # the stop delay: still serving, no longer ready
            with anyio.CancelScope(deadline=self.delay_until) as scope:
                self.delay_scope = scope
                await anyio.sleep_forever()
            self.delay_scope = None
            if self.requested is not None and not self.stop.stopped:
                logger.info("service %r: stop delay over, stopping the tasks", self.name)
                self._begin_stop(self.requested)
        await self.stop._event.wait()

    def _stop_last(self) -> None:
        """The other tasks have ended: stop those that stop last (forced if the stop was)."""
        now = anyio.current_time()
        deadline = now if self.stop.deadline is None else self.stop.deadline
        assert self.stop.reason is not None
        self.last.stop._request(
            self.stop.reason, max(deadline, now + LAST_STOP_GRACE), forced=self.stop.forced
        )

    async def _run_stage(self, stage: Stage, body: Callable[[], Awaitable[None]]) -> None:
        """Start the stage's tasks, run ``body`` (it returns once the stage's stop has been
        requested), then give the tasks until the stop's deadline before cancelling them."""
        async with anyio.create_task_group() as tg:
            for rec in stage.records:
                tg.start_soon(self._run_one, rec, stage)
            await body()
            self.tasks_scope = tg.cancel_scope
            if stage is self.main and self.stop.forced:  # those that stop last get their grace
                self.cancelled_by_force = True
                tg.cancel_scope.cancel()
            deadline = stage.stop.deadline
            with anyio.CancelScope(deadline=math.inf if deadline is None else deadline):
                await stage.done.wait()
            if not stage.done.is_set():
                self._cancel_late(stage, tg.cancel_scope)
        self.tasks_scope = None

    def _cancel_late(self, stage: Stage, scope: anyio.CancelScope) -> None:
        late = [r.id for r in stage.records if r.state is TaskState.RUNNING]
        logger.error(
            "service %r: %d task(s) did not stop within %g s, cancelling: %s",
            self.name,
            len(late),
            self.service.graceful_timeout,
            ", ".join(late[:20]) + (" ..." if len(late) > 20 else ""),
        )
        scope.cancel()

    async def _run_one(self, rec: TaskRecord, stage: Stage) -> None:
        kind = rec.kind
        current_task.set(rec.id)  # this task's own context: its log records name it
        try:
            # Whether a task runs is decided when the service commits to it, not when the
            # event loop gets round to it: unconstrained tasks at spawn, constrained ones
            # when the barrier is released (never, if stop came first).
            if kind.constrained and not self.barrier_released:
                rec.state = TaskState.WAITING
                await self.gate.wait()
                if not self.barrier_released:
                    rec.state = TaskState.SKIPPED
                    return
            rec.start()
            if kind.constrained:
                self.constrained_unstarted -= 1
                if self.constrained_unstarted == 0:
                    self._check_ready()
            if self.log_each:
                logger.log(self.level, "%s %r started", kind.value, rec.id)
            await self._execute(rec, stage.stop)
        except anyio.get_cancelled_exc_class():
            if rec.state is TaskState.RUNNING:
                rec.finish(TaskState.CANCELLED)
                logger.error("%s %r cancelled", kind.value, rec.id)
            elif rec.state is TaskState.RESTARTING:
                rec.finish(TaskState.SKIPPED)
            elif rec.state in (TaskState.PENDING, TaskState.WAITING):
                rec.state = TaskState.SKIPPED
            raise
        finally:
            stage.ended()
            self.alive -= rec.task is not self.notifier
            if self.alive == 0 and rec.task is not self.notifier:
                self.request_stop(StopReason(StopReasonKind.ALL_DONE))

    async def _execute(self, rec: TaskRecord, stop: StopReceiver) -> None:
        """Run the task; a supervised one again after each ending its policy restarts."""
        while True:
            error = await self._attempt(rec, stop)
            delay = self._restart_delay(rec, error, stop)
            if delay is None:
                break
            if await stop.wait(delay):
                rec.finish(TaskState.SKIPPED)
                logger.info("%s %r not restarted: the service is stopping", rec.kind.value, rec.id)
                return
            rec.restart()
            logger.info("%s %r restarted (restart %d)", rec.kind.value, rec.id, self._count(rec))
        if error is None:
            self._task_returned(rec)
        else:
            self._task_failed(rec, error)

    async def _attempt(self, rec: TaskRecord, stop: StopReceiver) -> BaseException | None:
        """One run (``prepare`` then ``run``): the exception it failed with, or None."""
        try:
            if rec.prepares:
                await self._prepare(rec)
            await rec.task.run(stop)
        except BaseException as exc:
            # Any exception but the service's own cancellation is this task's failure, also a
            # cancellation nobody here asked for, SystemExit or KeyboardInterrupt: the others
            # then stop gracefully and the hooks still run.
            if must_propagate(exc):
                raise
            return exc
        return None

    def _restart_delay(
        self, rec: TaskRecord, error: BaseException | None, stop: StopReceiver
    ) -> float | None:
        """Seconds until a supervised task that ended starts again, or None if it does not
        (no policy, an ending the policy does not restart, stop requested, or the intensity
        limit reached)."""
        sup = rec.supervisor
        if sup is None or stop.stopped or not sup.wants(error is not None):
            return None
        now = time.monotonic()
        delay = sup.next_delay(now - rec.t0, now)
        if delay is None:
            return None
        rec.backing_off(error, delay)
        how = "returned" if error is None else "failed"
        why = "" if error is None else f": {rec.last_error}"
        logger.warning(
            "%s %r %s after %.3f s%s; restart %d in %.2f s",
            rec.kind.value,
            rec.id,
            how,
            rec.duration,
            why,
            sup.restarts,
            delay,
            exc_info=error,
        )
        return delay

    @staticmethod
    def _count(rec: TaskRecord) -> int:
        return 0 if rec.supervisor is None else rec.supervisor.restarts

    def _task_failed(self, rec: TaskRecord, exc: BaseException) -> None:
        rec.finish(TaskState.FAILED, exc)
        if rec.supervisor is not None and rec.supervisor.exhausted:
            rec.description = f"{rec.description} (gave up: {rec.supervisor.limit_text()})"
        logger.error(
            "%s %r failed after %.3f s: %s",
            rec.kind.value,
            rec.id,
            rec.duration,
            rec.description,
            exc_info=exc,
        )
        reason = StopReason(StopReasonKind.TASK_FAILED, rec.id, message=rec.description)
        self.request_stop(reason)

    def _task_returned(self, rec: TaskRecord) -> None:
        rec.finish(TaskState.FINISHED)
        if self.log_each:
            logger.log(
                self.level, "%s %r finished after %.3f s", rec.kind.value, rec.id, rec.duration
            )
        if rec.kind is TaskKind.PRECONDITION:
            self.preconditions_left -= 1
            if self._barrier_open():
                self._release_barrier()
        elif not rec.kind.oneshot and not self.stop.stopped:
            self.request_stop(StopReason(StopReasonKind.TASK_EXITED, rec.id))

    async def _prepare(self, rec: TaskRecord) -> None:
        """Await the task's ``prepare``; the barrier waits for those of unconstrained tasks."""
        await rec.task.prepare()
        if rec.prepared:
            return
        rec.prepared = True
        if not rec.kind.constrained:
            self.prepares_left -= 1
            if self._barrier_open():
                self._release_barrier()

    def _barrier_open(self) -> bool:
        return self.preconditions_left == 0 and self.prepares_left == 0

    def _release_barrier(self) -> None:
        if self.stop.stopped:
            return  # constrained tasks still waiting never run
        self.barrier_released = True
        self.gate.set()
        self._check_ready()

    def _check_ready(self) -> None:
        if (
            self.phase is ServicePhase.STARTING
            and self.barrier_released
            and self.constrained_unstarted == 0
        ):
            self.phase = ServicePhase.READY
            logger.info("service %r is ready", self.name)

    async def _run_hooks(self, hooks: list[ShutdownHook]) -> None:
        self.hook_status = [HookStatus(h.id, TaskState.PENDING) for h in hooks]
        for i, hook in enumerate(hooks):
            if self.stop.forced:
                self.hook_status[i] = HookStatus(hook.id, TaskState.SKIPPED, error="forced stop")
                self.hook_failures.append(ShutdownHookTimeoutError(hook.id, hook.timeout, True))
                continue
            self.hook_status[i] = await self._run_hook(hook)

    async def _run_hook(self, hook: ShutdownHook) -> HookStatus:
        t0 = time.monotonic()
        error: BaseException | None = None
        with anyio.CancelScope() as scope:
            self.hook_scope = scope
            with anyio.move_on_after(hook.timeout) as timer:
                try:
                    result = hook.fn()
                    if inspect.isawaitable(result):
                        await result
                except BaseException as exc:  # as for tasks: all but our cancellation fail it
                    if must_propagate(exc):
                        raise
                    error = exc
        self.hook_scope = None
        duration = time.monotonic() - t0
        if error is not None:
            text = describe(error)
            logger.error("shutdown hook %r failed: %s", hook.id, text, exc_info=error)
            self.hook_failures.append(ShutdownHookFailedError(hook.id, error, description=text))
            return HookStatus(hook.id, TaskState.FAILED, duration, text)
        if scope.cancelled_caught or timer.cancelled_caught:
            failure = ShutdownHookTimeoutError(hook.id, hook.timeout, scope.cancelled_caught)
            logger.error("%s", failure)
            self.hook_failures.append(failure)
            return HookStatus(hook.id, TaskState.CANCELLED, duration, "timed out")
        logger.info("shutdown hook %r completed in %.3f s", hook.id, duration)
        return HookStatus(hook.id, TaskState.FINISHED, duration)

    def _failures(self) -> list[ServiceFailure]:
        failures: list[ServiceFailure] = []
        for rec in self.records:
            if rec.state is TaskState.FAILED and rec.error is not None:
                failures.append(
                    TaskFailedError(rec.id, rec.kind, rec.error, description=rec.description)
                )
            elif rec.state is TaskState.CANCELLED:
                failures.append(
                    TaskNotStoppedError(
                        rec.id, rec.kind, self.service.graceful_timeout, self.cancelled_by_force
                    )
                )
        return failures + self.hook_failures + self.resource_failures

    def status(self) -> ServiceStatus:
        """Snapshot the run."""
        stopping = self.stop.stopped
        if self.records:
            tasks = tuple(r.snapshot(stopping) for r in self.records)
        else:
            policies = self.service._policies
            tasks = tuple(
                TaskStatus(t.id, t.kind, TaskState.PENDING, supervised=t.id in policies)
                for t in self.service._tasks.values()
            )
        return ServiceStatus(
            name=self.name,
            phase=self.phase,
            ready=self.phase is ServicePhase.READY,
            stop_reason=self.stop.reason or self.requested,
            tasks=tasks,
            hooks=tuple(self.hook_status),
            resources=tuple(r.snapshot() for r in self.resources.opened),
            in_stop_delay=self.delay_until is not None,
        )
