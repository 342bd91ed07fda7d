"""JobContext: what a handler sees of its job and of the worker while it runs."""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, Protocol, TypeVar, cast, overload

from wireframe.durable import ChildHandle, DurableRun
from wireframe.scheduler._meta import check_meta
from wireframe.scheduler._numbers import number, seconds
from wireframe.scheduler._refs import JobRef, SupportsJobType
from wireframe.scheduler._transaction import HandlerTransaction
from wireframe.scheduler.codec import decode_result, decode_value, result_type_of
from wireframe.scheduler.errors import ConfigError, SchedulerError
from wireframe.scheduler.events import Event, EventBus, JobProgress, JobSubmitted
from wireframe.scheduler.priority import Priority
from wireframe.store import JobRecord, NewJob, Store
from wireframe.store.records import DependencyPolicy
from wireframe.store.transactional import Lent

T = TypeVar("T")
R = TypeVar("R")
A = ParamSpec("A")

_SPAWN_DEFAULTS: dict[str, object] = {
    "depends_on": (),
    "on_dependency_failure": "cancel",
    "fail_fast": True,
}


def _given(**options: object) -> dict[str, Any]:
    """The spawn options the caller gave: those not None nor at their defaults."""
    return {
        name: value
        for name, value in options.items()
        if value is not None and not (name in _SPAWN_DEFAULTS and value == _SPAWN_DEFAULTS[name])
    }


_step_types: weakref.WeakKeyDictionary[object, tuple[object]] = weakref.WeakKeyDictionary()


def _step_type(fn: object) -> object:
    """What a step function returns, by its annotations (None: not known); cached per function."""
    try:
        return _step_types[fn][0]
    except KeyError:
        pass
    except TypeError:  # not weakly referenceable (a bound method is made anew each time)
        return result_type_of(fn)
    hint = result_type_of(fn)
    _step_types[fn] = (hint,)
    return hint


class MiddlewareChain(Protocol):
    """What a JobContext needs of the worker's middleware (`_middleware.Chain`): whether any
    submit or step hooks are set, and running them around a spawn's write or a step's work."""

    @property
    def submits(self) -> bool:
        """True if some middleware has a submit hook."""
        ...

    @property
    def steps(self) -> bool:
        """True if some middleware has a step hook."""
        ...

    async def submit(
        self,
        payloads: Sequence[object],
        jobs: list[NewJob],
        write: Callable[[list[NewJob]], Awaitable[Sequence[R]]],
        *,
        spawned: bool = False,
    ) -> Sequence[R]:
        """Run the submit hooks of `jobs` around `write` (which stores them, in one go)."""
        ...

    async def step(self, ctx: JobContext, name: str, run: Callable[[], Awaitable[R]]) -> R:
        """Run a durable step's work (`run`) inside the step hooks."""
        ...


class Attempt(Protocol):
    """What a JobContext reads and writes of the attempt it serves."""

    @property
    def record(self) -> JobRecord:
        """The job's record as claimed."""
        ...

    @property
    def stopping(self) -> bool:
        """True once the worker asked the handler to stop."""
        ...

    def report_progress(self, fraction: float, message: str | None) -> bool:
        """Keep the latest progress for the beat that stores it; True if none was due yet (the
        first change since the job's last beat)."""
        ...

    txn: Lent | None
    """The handler's transaction waiting to commit with its completion (`transaction()`)."""


class JobHost(Protocol):
    """What a JobContext needs of the worker that runs its job."""

    @property
    def store(self) -> Store:
        """The store the job lives in."""
        ...

    @property
    def claim_ttl(self) -> float:
        """Seconds a lease lasts without renewal."""
        ...

    def publish(self, event: Event) -> None:
        """Publish a lifecycle event."""
        ...

    def holding_transitions(self) -> AbstractContextManager[None]:
        """Within the block, the store's own moves are published after the events published."""
        ...

    def state(self, job_type: str, cls: type) -> object | None:
        """Shared state of type `cls` for a job of `job_type`, or None."""
        ...

    def build_child(self, payload: object, options: dict[str, Any]) -> NewJob:
        """Validate a child submission (options may name its `type`) and build its row."""
        ...

    async def defer(
        self,
        job_id: int,
        condition: Callable[[], Any],
        poll_interval: float,
        deadline: float | None = None,
    ) -> bool:
        """Poll `condition` without holding a concurrency slot, until it is true (True) or the
        Unix time `deadline` passes (False)."""
        ...

    async def heartbeat(self, job_id: int) -> None:
        """Renew the job's lease now."""
        ...

    @property
    def events(self) -> EventBus:
        """Where the job's lifecycle events go (progress, which may change every millisecond,
        is published there directly, and built only while someone subscribes)."""
        ...

    def progressed(self, job_id: int) -> None:
        """The job's progress changed since its last beat: store it soon (coalesced)."""
        ...

    def notify(self) -> None:
        """Work may have become claimable (a spawned child, an emitted event's waiters)."""
        ...

    @property
    def chain(self) -> MiddlewareChain | None:
        """The worker's middleware (None: none)."""
        ...


class JobContext:
    """The handler's view of its job: identity, cancellation, progress, state and children."""

    def __init__(self, host: JobHost, attempt: Attempt) -> None:
        self._host = host
        self._attempt = attempt
        self._durable: DurableRun | None = None
        self._events = host.events

    @property
    def job(self) -> JobRecord:
        """The job's record as claimed: id, type, attempt, priority, parent and payload."""
        return self._attempt.record

    @property
    def meta(self) -> Mapping[str, str]:
        """The job's metadata (str to str), as given at submission by the caller or middleware."""
        return self._attempt.record.meta

    @property
    def cancelled(self) -> bool:
        """True once a stop was requested; return soon, or be cancelled after a grace period."""
        return self._attempt.stopping

    @property
    def phase(self) -> str:
        """`execute` while the handler runs, `finalize` while the finalize handler runs."""
        return self._attempt.record.phase

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress in [0, 1] with an optional message; subscribers see it at once, the
        store (and so other processes) within about a second."""
        if type(fraction) is not float or not 0.0 <= fraction <= 1.0:  # the common case: fast
            fraction = self._fraction(fraction)
        attempt = self._attempt  # some handlers call this every millisecond: keep it lean
        if attempt.report_progress(fraction, message):
            self._host.progressed(attempt.record.id)
        events = self._events
        if events.subscriber_count:
            job = attempt.record
            events.publish(
                JobProgress(job_id=job.id, job_type=job.type, fraction=fraction, message=message)
            )

    def _fraction(self, fraction: object) -> float:
        where = f"job {self.job.id}: progress fraction"
        value = number(fraction, where, low=0.0)
        if value > 1.0:
            raise ConfigError(f"{where} must be in [0, 1], got {fraction!r}")
        return value

    def state(self, cls: type[T]) -> T:
        """Shared state registered for `cls`: the job's domain first, then the scheduler's."""
        found = self._host.state(self.job.type, cls)
        if found is None:
            raise LookupError(
                f"job {self.job.id} ({self.job.type}): no state of type {cls.__qualname__} "
                f"registered on domain {self.job.domain!r} or on the scheduler"
            )
        return cast(T, found)

    # -- durable calls (recorded once, replayed on every later run) ---------------------------

    @property
    def durable(self) -> DurableRun:
        """The replay engine of this invocation (created on the first durable call)."""
        if self._durable is None:
            host, job = self._host, self.job
            chain = host.chain
            self._durable = DurableRun(
                host.store,
                job.lease,
                host.claim_ttl,
                job.type,
                build_child=lambda payload, options: host.build_child(
                    payload, {"parent": job.id, **options}
                ),
                decode_result=decode_result,
                spawned=lambda child_id, child: host.publish(
                    JobSubmitted(job_id=child_id, job_type=child.type)
                ),
                phase=job.phase,
                spawn_hook=self._spawn_hook if chain is not None and chain.submits else None,
                step_hook=self._step_hook if chain is not None and chain.steps else None,
            )
        return self._durable

    async def _spawn_hook(
        self, payload: object, job: NewJob, write: Callable[[NewJob], Awaitable[R]]
    ) -> R:
        """Run the submit middleware around the write of a child this job spawns."""
        chain = self._host.chain
        assert chain is not None

        async def write_one(rows: list[NewJob]) -> list[R]:
            return [await write(rows[0])]

        results = await chain.submit([payload], [job], write_one, spawned=True)
        return results[0]

    async def _step_hook(self, name: str, work: Callable[[], Awaitable[T]]) -> T:
        """Run the step middleware around the work of a step that is not replayed."""
        chain = self._host.chain
        assert chain is not None
        return await chain.step(self, name, work)

    def _child_meta(self, meta: Mapping[str, str] | None) -> dict[str, str]:
        """A child's metadata: this job's, updated with what the spawn gives."""
        inherited = dict(self.job.meta)
        if meta is not None:
            inherited.update(check_meta(meta, where=self._where("spawn meta")))
        return inherited

    @overload
    async def step(
        self, name: str, fn: Callable[A, Awaitable[T]], /, *args: A.args, **kwargs: A.kwargs
    ) -> T: ...

    @overload
    async def step(
        self, name: str, fn: Callable[A, T], /, *args: A.args, **kwargs: A.kwargs
    ) -> T: ...

    async def step(self, name: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` (a function or an async one) once and checkpoint its JSON
        result; re-runs return it. The result comes back as `fn`'s return annotation says
        (an attrs class as one, a tuple as a tuple...), on the first run as on re-runs."""
        value = await self.durable.step(name, fn, *args, **kwargs)
        hint = _step_type(fn)
        if hint is None:
            return value
        job = self.job
        return decode_value(value, hint, where=f"job {job.id} ({job.type}): step {name!r}")

    def _where(self, call: str) -> str:
        return f"job {self.job.id} ({self.job.type}): {call}"

    async def sleep(self, name: str, seconds: float) -> None:
        """Durable sleep: the job leaves its slot and runs again from the top after `seconds`."""
        delay = number(seconds, self._where(f"sleep {name!r} seconds"), low=0.0)
        await self.durable.sleep(name, delay)

    async def sleep_until(self, name: str, when: float) -> None:
        """Durable sleep until the Unix time `when`."""
        await self.durable.sleep_until(name, number(when, self._where(f"sleep_until {name!r}")))

    async def wait_event(self, name: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait (suspended) for the event `name`; return its payload or raise EventTimeout
        once `timeout` seconds (counted from the first run of this call) pass without it."""
        if timeout is not None:
            timeout = number(timeout, self._where(f"wait_event {name!r} timeout"), low=0.0)
        return await self.durable.wait_event(name, timeout)

    async def emit_event(self, name: str, payload: object = None) -> bool:
        """Emit an event (a latch: the first emit wins); True if this emit set it."""
        won = await self.durable.emit_event(name, payload)
        self._host.notify()  # its waiters are due now
        return won

    async def spawn(
        self,
        payload: object,
        *,
        type: SupportsJobType | str | None = None,
        priority: Priority | int | str | None = None,
        delay: float | None = None,
        run_at: float | dt.datetime | None = None,
        key: str | None = None,
        depends_on: Iterable[JobRef] = (),
        on_dependency_failure: DependencyPolicy = "cancel",
        tags: Iterable[str] | None = None,
        ttl: float | None = None,
        fail_fast: bool = True,
        resources: Mapping[str, int] | None = None,
        max_reclaims: int | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> ChildHandle:
        """Submit a child job (checkpointed: a re-run gets the same child back); the options
        are `Scheduler.submit`'s. The child's `meta` starts from this job's, updated with
        `meta`."""
        options = _given(
            type=type,
            priority=priority,
            delay=delay,
            run_at=run_at,
            key=key,
            depends_on=depends_on,
            on_dependency_failure=on_dependency_failure,
            tags=tags,
            ttl=ttl,
            fail_fast=fail_fast,
            resources=resources,
            max_reclaims=max_reclaims,
        )
        options["meta"] = self._child_meta(meta)
        with self._host.holding_transitions():  # the child is submitted before it is blocked
            handle = await self.durable.spawn(payload, options)
        self._host.notify()
        return handle

    async def spawn_sibling(
        self,
        payload: object,
        *,
        type: SupportsJobType | str | None = None,
        priority: Priority | int | str | None = None,
        delay: float | None = None,
        run_at: float | dt.datetime | None = None,
        key: str | None = None,
        depends_on: Iterable[JobRef] = (),
        on_dependency_failure: DependencyPolicy = "cancel",
        tags: Iterable[str] | None = None,
        ttl: float | None = None,
        fail_fast: bool = True,
        resources: Mapping[str, int] | None = None,
        max_reclaims: int | None = None,
        meta: Mapping[str, str] | None = None,
    ) -> ChildHandle:
        """Submit a peer of this job under the same parent (the options are `spawn`'s); an
        error for a job without a parent."""
        if self.job.parent_id is None:
            raise SchedulerError(
                f"spawn_sibling: job {self.job.id} ({self.job.type}) has no parent, "
                f"so it can have no siblings"
            )
        options = _given(
            type=type,
            priority=priority,
            delay=delay,
            run_at=run_at,
            key=key,
            depends_on=depends_on,
            on_dependency_failure=on_dependency_failure,
            tags=tags,
            ttl=ttl,
            fail_fast=fail_fast,
            resources=resources,
            max_reclaims=max_reclaims,
        )
        options["meta"] = self._child_meta(meta)
        with self._host.holding_transitions():
            handle = await self.durable.spawn(payload, {**options, "parent": self.job.parent_id})
        self._host.notify()
        return handle

    async def join(self, handle: ChildHandle) -> Any:
        """Wait (suspended) for a child; return its result or raise ChildFailed/ChildCancelled."""
        return await self.durable.join(handle)

    async def now(self) -> float:
        """The current time, recorded once: the same on every re-run."""
        return await self.durable.now()

    async def rand(self) -> float:
        """A random float in [0, 1), recorded once."""
        return await self.durable.rand()

    async def uuid7(self) -> uuid.UUID:
        """A time-ordered UUID, recorded once."""
        return await self.durable.uuid7()

    async def defer_until(
        self,
        condition: Callable[[], Any],
        poll_interval: float = 1.0,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Give the concurrency slot back while polling `condition`, then take one and go on.

        With `timeout` seconds, counted from the first run of this call (recorded, so a re-run
        after a crash keeps the deadline), raise DeferTimeout once they pass without the
        condition coming true; how the call ended is recorded, so a re-run returns at once or
        raises DeferTimeout again. Without one, it polls as long as it takes, on every run.
        """
        job = self.job
        poll = seconds(poll_interval, self._where("defer_until poll_interval"))
        if timeout is None:
            await self._host.defer(job.id, condition, poll)
            return
        limit = seconds(timeout, self._where("defer_until timeout"))
        await self.durable.defer_until(
            limit, lambda deadline: self._host.defer(job.id, condition, poll, deadline)
        )

    def transaction(self, step: str | None = None) -> HandlerTransaction:
        """`async with ctx.transaction() as conn:` a transaction on the store's database, for
        the handler's own writes, that commits together with the job's completion (fenced on
        the lease), so those writes happen exactly once.

        `conn` is a `sqlite3.Connection` (synchronous calls, inside BEGIN IMMEDIATE) on a SQLite
        store, a psycopg `AsyncConnection` on PostgreSQL (asyncio); do not commit or roll it
        back yourself. Without `step`, the block's transaction stays open until the handler
        returns and commits with the completion; if the handler raises, suspends or loses its
        lease, it rolls back. With `step="name"` (durable jobs: a checkpoint), it commits when
        the block ends, with the step's record; a re-run runs the block again in a transaction
        that is rolled back, and ignores its errors. Keep the block to database work, and
        without `step` return right after it: on SQLite the transaction holds the write lock
        until it commits, so the store's other writes (`step`, `sleep`, heartbeats, other jobs)
        wait for it. One transaction without `step` per run. The memory store has no database:
        ForeignConnection.
        """
        durable = self.durable if step is not None else None
        return HandlerTransaction(self._host.store, self._attempt, durable, step)

    async def children(self) -> list[JobRecord]:
        """This job's children, oldest first."""
        return await self._host.store.list_jobs(parent_id=self.job.id, limit=1_000_000)

    async def heartbeat(self) -> None:
        """Extend this job's lease now; if the lease was lost, the handler is cancelled."""
        await self._host.heartbeat(self.job.id)
