"""Worker: a Task that claims jobs in batches, runs them on a pool of runners and writes their
outcomes in batches, renewing leases while they run; when it stops, it hands back what it holds.

The work flows one way through private stages, each built here with the callbacks it needs:
`Producer` (claims) -> `Executor` (runners) -> `Completer` (writes), with `Leases` (heartbeats,
cancel and pause requests) and `Maintenance` (aging, pruning, schedules) beside them.
"""

from __future__ import annotations

import logging
import math
import os
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import anyio
import attrs

from wireframe.scheduler._completer import Completer
from wireframe.scheduler._config import WorkerConfig, worker_config
from wireframe.scheduler._executor import Executor
from wireframe.scheduler._front import Front, store_of
from wireframe.scheduler._hub import Hub
from wireframe.scheduler._leases import PROGRESS_EVERY, Leases
from wireframe.scheduler._maintenance import Maintenance
from wireframe.scheduler._middleware import Chain, chain_of
from wireframe.scheduler._outcome import hand_back
from wireframe.scheduler._producer import Producer
from wireframe.scheduler._registry import Registry
from wireframe.scheduler._running import Interrupt, Running
from wireframe.scheduler._store_errors import store_errors
from wireframe.scheduler._transaction import Committed
from wireframe.scheduler.clock import Clock
from wireframe.scheduler.context import JobContext
from wireframe.scheduler.domain import Domain
from wireframe.scheduler.errors import ConfigError, HandBackError
from wireframe.scheduler.events import Event, EventBus
from wireframe.scheduler.flow import rate_limits
from wireframe.scheduler.limits import Limits
from wireframe.scheduler.middleware import Middleware
from wireframe.scheduler.shutdown import ShutdownMode
from wireframe.service import StopReceiver, Task, TaskKind
from wireframe.store import Complete, NewJob, Outcome, Store, StoreError, WorkerInfo

log = logging.getLogger("wireframe.scheduler")

HAND_BACK_RESERVE = 2.0
"""Seconds kept, at most, before the service's graceful deadline for handing jobs back."""
FORCED_HAND_BACK = 1.0
"""Seconds a cancelled (forced) worker spends writing back the jobs it holds."""
WRITE_BACK = 10.0
"""Seconds a stopping worker with no service deadline spends writing back the jobs it holds."""
CLOSE_TIMEOUT = 5.0
"""Seconds a stopping worker waits for its store to close."""


class Worker(Front, Task):
    """Runs jobs of the given domains from a store; a Task, so a Service hosts it.

    When asked to stop it claims nothing more, lets running jobs finish for up to
    `shutdown.seconds` (never past the service's graceful deadline), cancels the rest and hands
    them back: they return to `pending` with their durable checkpoints, no attempt spent. A
    forced stop (a second signal) hands them back at once. Only a crash (SIGKILL, power loss)
    leaves leases to expire; a worker that cannot write the hand-back (its store unreachable)
    raises HandBackError, so the process exits non-zero. Progress a handler reports reaches the
    store within `progress_every` seconds (default 1): one beat of the jobs whose progress changed.
    """

    kind = TaskKind.TASK

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        domains: Iterable[Domain],
        *,
        worker_id: str | None = None,
        claim_ttl: float = 300.0,
        batch_size: int = 64,
        tags: Sequence[str] = (),
        aging_interval: float | None = 60.0,
        poll_interval: float = 1.0,
        max_concurrency: int = 8,
        resources: Mapping[str, int] | None = None,
        shutdown: ShutdownMode | None = None,
        cancel_grace: float = 5.0,
        keep_history: float | None = None,
        clock: Clock | None = None,
        progress_every: float = PROGRESS_EVERY,
        id: str = "worker",
        middleware: Iterable[Middleware] = (),
    ) -> None:
        config = worker_config(
            where="Worker",
            worker_id=worker_id,
            claim_ttl=claim_ttl,
            batch_size=batch_size,
            tags=tags,
            aging_interval=aging_interval,
            poll_interval=poll_interval,
            max_concurrency=max_concurrency,
            resources=resources,
            shutdown=shutdown,
            cancel_grace=cancel_grace,
            keep_history=keep_history,
            clock=clock,
            progress_every=progress_every,
            middleware=middleware,
        )
        registry = Registry(domains, where="Worker")
        self._setup(Hub(store_of(store)), registry)
        self._configure(config, id, owns_hub=True)

    @classmethod
    def _embedded(cls, hub: Hub, registry: Registry, config: WorkerConfig, id: str) -> Worker:
        """A worker sharing a Scheduler's store, events and job types (the Scheduler owns them)."""
        worker = cls.__new__(cls)
        worker._setup(hub, registry)
        worker._configure(config, id, owns_hub=False)
        return worker

    def _setup(self, hub: Hub, registry: Registry) -> None:
        self._hub = hub
        self._registry = registry

    def _configure(self, config: WorkerConfig, id: str, *, owns_hub: bool) -> None:
        self.id = id
        self._owns_hub = owns_hub
        self.config = config
        self.worker_id = config.worker_id
        self._recorder = config.worker_id
        self.claim_ttl = config.claim_ttl
        self.batch_size = config.batch_size
        self.tags = config.tags
        self.aging_interval = config.aging_interval
        self.poll_interval = config.poll_interval
        self.shutdown = config.shutdown
        self.cancel_grace = config.cancel_grace
        self.keep_history = config.keep_history
        self.middleware = config.middleware
        """Hooks around every attempt (see `wireframe.scheduler.middleware`)."""
        self.domain_names = tuple(self._registry.domains)
        self.limits = _limits(self._registry, config)
        self._build()

    def _build(self) -> None:
        """The stages, wired to each other by the callbacks each takes."""
        config, hub, clock = self.config, self._hub, self.config.clock
        chain = chain_of(config.middleware)
        host = _Host(
            hub,
            self._registry,
            self.limits.budgets,
            self.claim_ttl,
            lambda job_id, condition, poll, deadline: self._executor.defer(
                job_id, condition, poll, deadline
            ),
            lambda job_id: self._leases.heartbeat(job_id),
            lambda job_id: self._leases.progressed(job_id),
            lambda: self._producer.notify(),
            chain,
        )
        self._executor = Executor(
            self.limits,
            hub.events,
            self._registry.types,
            worker_id=self.worker_id,
            clock=clock,
            lease_margin=self.claim_ttl / 2,
            context=lambda running: JobContext(host, running),
            report=self._report,
            freed=lambda: self._producer.notify(),
            renew=lambda running: self._leases.renew(running),
            chain=chain if chain is not None and chain.attempts else None,
        )
        self._completer = Completer(
            hub,
            batch_size=self.batch_size,
            queued=lambda: len(self._executor.jobs),
            lend=lambda: self._producer.lend(),
            written=lambda asked, jobs: self._producer.written(asked, jobs),
            running=lambda: bool(self._executor.running),
            check_requests=lambda: self._leases.check_requests(),
            housekeep=lambda: self._producer.housekeep_if_due(),
        )
        self._producer = Producer(
            hub.store,
            self._executor,
            worker_id=self.worker_id,
            claim_ttl=self.claim_ttl,
            batch_size=self.batch_size,
            domains=self.domain_names,
            tags=self.tags,
            poll_interval=self.poll_interval,
            clock=clock,
            backlog=lambda: self._completer.backlog,
            rates=rate_limits(self._registry.types.values()),
        )
        self._leases = Leases(
            hub.store,
            self._executor,
            claim_ttl=self.claim_ttl,
            cancel_grace=self.cancel_grace,
            clock=clock,
            unwritten=self._completer.unwritten,
            progress_every=config.progress_every,
        )
        self._maintenance = Maintenance(
            hub,
            domains=self.domain_names,
            aging_interval=config.aging_interval,
            keep_history=config.keep_history,
            poll_interval=self.poll_interval,
            clock=clock,
            fired=self._producer.notify,
            presence=self._presence,
            presence_every=self._leases.interval,
        )
        self._handed_back = False

    # -- public -----------------------------------------------------------------------------

    @property
    def running(self) -> Mapping[int, Running]:
        """The jobs this worker holds now (queued, running or deferred), by id."""
        return self._executor.running

    def notify(self, due: float | None = None) -> None:
        """Wake the claim loop now (called by an in-process submit); `due`: a delayed job's time."""
        self._producer.notify(due)

    def interrupt(self, job_id: int, reason: str) -> bool:
        """Ask a job this worker runs to stop (cancelled, paused, preempted); False if it does
        not run it here."""
        try:
            why = Interrupt(reason)
        except ValueError:
            reasons = ", ".join(i.value for i in Interrupt)
            raise ConfigError(
                f"interrupt job {job_id}: reason {reason!r} is not one of {reasons}"
            ) from None
        grace = self.cancel_grace if why is Interrupt.CANCELLED else 0.0
        return self._executor.interrupt(job_id, why, grace)

    async def check_requests(self) -> None:
        """Renew every lease now, so cancel and pause requests reach running handlers at once."""
        with store_errors():
            await self._leases.check_requests()

    # -- task -------------------------------------------------------------------------------

    async def run(self, stop: StopReceiver) -> None:
        """Claim and run jobs until stop, then hand back what is left (see the class doc)."""
        await self.open()
        try:
            await self._work(stop)
        finally:
            if self._owns_hub:  # a standalone worker owns its store
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                    await self._hub.close()

    async def _work(self, stop: StopReceiver) -> None:
        stages = _Stages()
        try:
            async with anyio.create_task_group() as tg:
                stages.start(tg, "runners", self._executor.serve)
                stages.start(tg, "completer", self._completer.run)
                stages.start(tg, "producer", self._producer.run)
                stages.start(tg, "leases", self._leases.run)
                stages.start(tg, "maintenance", self._maintenance.run)
                await stop.wait()
                await self._stop(stages, _Timeline.of(stop, self.shutdown))
        except BaseException:
            if not self._handed_back:  # cancelled (a forced stop), or a stage failed
                with anyio.CancelScope(shield=True):
                    await self._hand_back(anyio.current_time() + FORCED_HAND_BACK)
            raise

    async def _stop(self, stages: _Stages, timeline: _Timeline) -> None:
        """Stop intake, drain, interrupt, write everything back; in that order, in time."""
        self._producer.stop()
        await stages.stop("producer", timeline.drain_end)  # a claim under way completes
        self._executor.stop_unstarted()
        with anyio.move_on_after(timeline.left(timeline.drain_end)):
            await self._executor.wait_idle()
        self._executor.interrupt_all(Interrupt.SHUTDOWN)
        with anyio.move_on_after(timeline.left(timeline.interrupt_end)):
            await self._executor.wait_idle()
        self._executor.close()
        await stages.stop("runners", timeline.interrupt_end)
        self._completer.close()
        await stages.stop("completer", timeline.write_end)
        await stages.stop("maintenance", 0.0)
        await stages.stop("leases", 0.0)
        await self._hand_back(timeline.write_end)
        with anyio.move_on_after(max(timeline.left(timeline.write_end), FORCED_HAND_BACK)):
            try:
                await self._maintenance.leave()
            except StoreError as exc:  # its row is then shown lost once its ttl has passed
                log.warning(
                    "worker %s could not delete its row from the store: %s", self.worker_id, exc
                )

    def _presence(self) -> WorkerInfo:
        """What this worker records about itself in the store."""
        return WorkerInfo(
            worker_id=self.worker_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            domains=self.domain_names,
            tags=self.tags,
            resources=dict(self.limits.budgets),
            held=len(self._executor.running),
            ttl=self.claim_ttl,
        )

    async def _hand_back(self, until: float) -> None:
        """Write every outcome not yet written, and hand back every job still held."""
        self._handed_back = True
        self._producer.stop()
        self._completer.close()
        for running in list(self._executor.running.values()):
            self._executor.done(running, hand_back(running))
        completer = self._completer
        error: BaseException | None = None
        with anyio.move_on_after(max(0.0, until - anyio.current_time())):
            try:
                await completer.flush()
            except StoreError as exc:
                error = exc
        if completer.outcomes:
            held = len(completer.outcomes)
            why = f"{error}" if error is not None else "the store did not answer in time"
            message = (
                f"worker {self.worker_id} could not hand back {held} job(s) it held ({why}); "
                f"they return to pending when their leases expire (claim_ttl {self.claim_ttl:g} s)"
            )
            raise HandBackError(message) from error  # the service reports it

    def _report(self, running: Running, outcome: Outcome | Committed | None) -> None:
        """A runner is done with a job: queue its outcome (or publish one it committed in the
        handler's transaction), and let the producer claim."""
        if isinstance(outcome, Committed):
            self._completer.committed(running, outcome.outcome, outcome.deliver)
        elif outcome is not None:
            if type(outcome) is not Complete:
                self._producer.expect_outcome(outcome)
            self._completer.add(running, outcome)
        self._producer.notify()


class _Stages:
    """The worker's stages, each in a cancel scope of its own so each can be stopped alone."""

    def __init__(self) -> None:
        self._scopes: dict[str, anyio.CancelScope] = {}
        self._done: dict[str, anyio.Event] = {}

    def start(self, tg: anyio.abc.TaskGroup, name: str, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` in the task group, in a scope of its own."""
        scope = self._scopes[name] = anyio.CancelScope()
        done = self._done[name] = anyio.Event()

        async def stage() -> None:
            try:
                with scope:
                    await fn()
            finally:
                done.set()

        tg.start_soon(stage)

    async def stop(self, name: str, until: float) -> None:
        """Wait for the stage to return until the anyio time `until`, then cancel it."""
        done = self._done[name]
        with anyio.move_on_after(max(0.0, until - anyio.current_time())):
            await done.wait()
        self._scopes[name].cancel()
        await done.wait()


@attrs.frozen
class _Timeline:
    """When each phase of a stop ends, in anyio time: drain, interrupt, write back."""

    drain_end: float
    interrupt_end: float
    write_end: float

    @classmethod
    def of(cls, stop: StopReceiver, shutdown: ShutdownMode) -> _Timeline:
        """The phases of a stop that begins now, fitted into the service's graceful deadline."""
        now = anyio.current_time()
        deadline = getattr(stop, "deadline", None)
        if deadline is None or math.isinf(deadline):
            drain_end = now + shutdown.seconds
            return cls(drain_end, drain_end + 1.0, drain_end + 1.0 + WRITE_BACK)
        reserve = max(0.0, min(HAND_BACK_RESERVE, (deadline - now) / 4))
        drain_end = min(now + shutdown.seconds, deadline - 2 * reserve)
        return cls(drain_end, min(drain_end + 1.0, deadline - reserve), deadline - reserve / 2)

    def left(self, until: float) -> float:
        """Seconds from now until the anyio time `until` (0 if passed)."""
        return max(0.0, until - anyio.current_time())


@attrs.frozen
class _Host:
    """What a JobContext needs of the worker (`context.JobHost`), as the worker's parts."""

    hub: Hub
    registry: Registry
    budgets: Mapping[str, int]
    claim_ttl: float
    defer_fn: Callable[[int, Callable[[], Any], float, float | None], Awaitable[bool]]
    heartbeat_fn: Callable[[int], Awaitable[None]]
    progressed_fn: Callable[[int], None]
    notify_fn: Callable[[], None]
    chain: Chain | None = None
    """The worker's middleware (None: none)."""

    @property
    def store(self) -> Store:
        return self.hub.store

    def publish(self, event: Event) -> None:
        self.hub.publish(event)

    def holding_transitions(self) -> AbstractContextManager[None]:
        return self.hub.holding_transitions()

    def state(self, job_type: str, cls: type) -> object | None:
        return self.registry.state(job_type, cls)

    def build_child(self, payload: object, options: dict[str, Any]) -> NewJob:
        job_type = options.pop("type", None)
        return self.registry.build_job(payload, job_type, options, self.budgets)

    async def defer(
        self,
        job_id: int,
        condition: Callable[[], Any],
        poll_interval: float,
        deadline: float | None = None,
    ) -> bool:
        return await self.defer_fn(job_id, condition, poll_interval, deadline)

    async def heartbeat(self, job_id: int) -> None:
        await self.heartbeat_fn(job_id)

    @property
    def events(self) -> EventBus:
        return self.hub.events

    def progressed(self, job_id: int) -> None:
        self.progressed_fn(job_id)

    def notify(self) -> None:
        self.notify_fn()


def _limits(registry: Registry, config: WorkerConfig) -> Limits:
    domains = registry.domains.values()
    return Limits(
        config.max_concurrency,
        {d.name: d.max_concurrency for d in domains if d.max_concurrency is not None},
        {t.type: t.max_concurrency for t in registry.types.values() if t.max_concurrency},
        config.resources,
    )
