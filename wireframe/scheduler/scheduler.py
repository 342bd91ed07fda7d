"""Scheduler: accepts submissions, answers queries and control calls, and (by default) runs jobs
through an embedded Worker. It is a Task, so a Service hosts it beside other tasks."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import anyio
import attrs

from wireframe.durable.errors import DurableError
from wireframe.durable.run import to_json
from wireframe.scheduler._config import worker_config
from wireframe.scheduler._front import Front, store_of
from wireframe.scheduler._hub import Hub
from wireframe.scheduler._middleware import chain_of, check_middleware
from wireframe.scheduler._pauses import flow_name
from wireframe.scheduler._refs import JobRef
from wireframe.scheduler._registry import Registry
from wireframe.scheduler._running import default_worker_id
from wireframe.scheduler._store_errors import scheduler_error, store_errors
from wireframe.scheduler._transaction import submit_on
from wireframe.scheduler._typevars import PayloadT, ResultT
from wireframe.scheduler.codec import decode_result, encode_payload
from wireframe.scheduler.domain import Domain, JobType
from wireframe.scheduler.errors import (
    ConfigError,
    JobFailed,
    JobNotFound,
    PayloadError,
    ResultTimeout,
    ScheduleNotFound,
    SchedulerClosed,
    ScheduleStateError,
)
from wireframe.scheduler.events import JobSubmitted, Subscription
from wireframe.scheduler.flow import submitted
from wireframe.scheduler.keys import flow_fields
from wireframe.scheduler.middleware import Middleware
from wireframe.scheduler.priority import Priority
from wireframe.scheduler.recurring import Recurrence, recurrence_from_json
from wireframe.scheduler.shutdown import ShutdownMode
from wireframe.scheduler.snapshot import RunningJob, Snapshot
from wireframe.scheduler.submission import key_of
from wireframe.scheduler.worker import CLOSE_TIMEOUT, Worker
from wireframe.service import StopReceiver, Task, TaskKind
from wireframe.store import (
    Duplicate,
    FlowKind,
    InvalidTransitionError,
    JobRecord,
    JobState,
    NewJob,
    PausedFlow,
    ScheduleRecord,
    Store,
    StoreError,
    Submitted,
    UnknownScheduleError,
)
from wireframe.store.records import DependencyPolicy


class Scheduler(Front, Task):
    """Submit, query and control jobs; with `worker=True` (the default) it also runs them."""

    kind = TaskKind.TASK

    def __init__(
        self,
        store: Store | str | os.PathLike[str],
        *,
        domains: Iterable[Domain],
        worker: bool = True,
        max_concurrency: int = 8,
        id: str = "scheduler",
        state: Iterable[object] = (),
        worker_id: str | None = None,
        claim_ttl: float = 300.0,
        batch_size: int = 64,
        tags: Sequence[str] = (),
        aging_interval: float | None = 60.0,
        poll_interval: float = 1.0,
        resources: Mapping[str, int] | None = None,
        shutdown: ShutdownMode | None = None,
        cancel_grace: float = 5.0,
        keep_history: float | None = None,
        event_buffer: int = 1024,
        middleware: Iterable[Middleware] = (),
    ) -> None:
        self.id = id
        self.middleware = check_middleware(middleware, "Scheduler")
        """Hooks around every submit and attempt (see `wireframe.scheduler.middleware`)."""
        chain = chain_of(self.middleware)
        self._chain = chain if chain is not None and chain.submits else None
        self._registry = Registry(domains, where="Scheduler")
        for value in state:
            self._registry.provide(value)
        self._hub = Hub(store_of(store), event_buffer)
        self.poll_interval = poll_interval
        self.worker: Worker | None = None
        self._recorder = default_worker_id() if worker_id is None else worker_id
        if worker:
            if not self._registry.domains:
                raise ConfigError("Scheduler: a scheduler that runs jobs needs at least one Domain")
            config = worker_config(
                where="Scheduler",
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
                middleware=self.middleware,
            )
            self.worker = Worker._embedded(self._hub, self._registry, config, f"{id}.worker")
            self._recorder = self.worker.worker_id

    # -- lifecycle --------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the store."""
        await self._hub.close()

    async def __aenter__(self) -> Scheduler:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def run(self, stop: StopReceiver) -> None:
        """Open the store, run the embedded worker (if any) until stop, then close the store."""
        await self.open()
        try:
            if self.worker is not None:
                await self.worker.run(stop)
            else:
                await stop.wait()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT):
                await self.close()

    # -- submitting -------------------------------------------------------------------------

    def job_type(
        self, payload: object, type: str | JobType[Any, Any] | None = None
    ) -> JobType[Any, Any]:
        """The job type a payload (or an explicit `type`) resolves to; a clear error otherwise."""
        return self._registry.job_type(payload, type)

    def build_job(
        self, payload: object, type: str | JobType[Any, Any] | None, options: dict[str, Any]
    ) -> NewJob:
        """Validate a submission and build its store row (nothing is written)."""
        budgets = self.worker.limits.budgets if self.worker is not None else None
        return self._registry.build_job(payload, type, options, budgets)

    async def submit(
        self,
        payload: PayloadT | Mapping[str, Any],
        *,
        type: JobType[PayloadT, ResultT] | str | None = None,
        priority: Priority | int | str | None = None,
        delay: float | None = None,
        run_at: float | dt.datetime | None = None,
        key: str | None = None,
        depends_on: Iterable[JobRef] = (),
        on_dependency_failure: DependencyPolicy = "cancel",
        parent: JobRef | None = None,
        tags: Iterable[str] | None = None,
        ttl: float | None = None,
        recurring: Recurrence | None = None,
        fail_fast: bool = True,
        resources: Mapping[str, int] | None = None,
        max_reclaims: int | None = None,
        connection: object | None = None,
        meta: Mapping[str, str] | None = None,
        debounce: float | None = None,
        throttle: float | None = None,
    ) -> Submitted[ResultT] | Duplicate[ResultT]:
        """Submit one job; return Submitted(id) or Duplicate(existing_id).

        `type` picks the job type (a `JobType`, as `@domain.job` returns, or its
        `"domain::name"`); by default the payload's class does. Given a `JobType`, the handle
        is typed with its handler's result type, which `result()` returns. `priority` (default:
        the type's or its domain's), `delay` seconds or `run_at` (a Unix time or an aware
        datetime), a dedup `key` (default: the type's key callable), `depends_on` jobs (run
        after they complete; `on_dependency_failure`: cancel, fail or ignore), a `parent`,
        `tags` a worker must have, a `ttl` (seconds a job that has not started may wait),
        `recurring` (Every or Cron), `fail_fast` (a failed child fails its parent at once),
        `resources` it holds while it runs, `max_reclaims` (lost workers it survives) and
        `meta` (str to str, stored with the job; middleware may add to it).
        `debounce` seconds (with a key): a job with that key still waiting to start takes
        this payload and runs that long from now (`Submitted(id, replaced=True)`, its id);
        `throttle` seconds (with a key): Duplicate within that long of the last accepted
        submission with the key.
        `connection`: the application's open connection, in a transaction, on the store's
        database (a `sqlite3` connection to its file; a psycopg connection, sync or async, on
        PostgreSQL; or the SQLAlchemy connection holding one): the job is written in that
        transaction and exists exactly when it commits, which wakes the workers; a connection
        to another database raises ForeignConnection. No `JobSubmitted` event is published for
        such a submit (the scheduler does not see the commit). The payload's field types are
        checked against its class's annotations first: a PayloadError names the field
        (``payload.items[2].n``) and the bad value.
        """
        options = _options(
            priority,
            delay,
            run_at,
            key,
            depends_on,
            on_dependency_failure,
            parent,
            tags,
            ttl,
            recurring,
            fail_fast,
            resources,
            max_reclaims,
            meta,
            debounce,
            throttle,
        )
        results = await self._submit(
            [self.build_job(payload, type, options)], [payload], connection
        )
        return cast("Submitted[ResultT] | Duplicate[ResultT]", results[0])

    async def submit_many(
        self,
        payloads: Iterable[PayloadT | Mapping[str, Any]],
        *,
        type: JobType[PayloadT, ResultT] | str | None = None,
        priority: Priority | int | str | None = None,
        delay: float | None = None,
        run_at: float | dt.datetime | None = None,
        key: str | None = None,
        depends_on: Iterable[JobRef] = (),
        on_dependency_failure: DependencyPolicy = "cancel",
        parent: JobRef | None = None,
        tags: Iterable[str] | None = None,
        ttl: float | None = None,
        recurring: Recurrence | None = None,
        fail_fast: bool = True,
        resources: Mapping[str, int] | None = None,
        max_reclaims: int | None = None,
        connection: object | None = None,
        meta: Mapping[str, str] | None = None,
        debounce: float | None = None,
        throttle: float | None = None,
    ) -> list[Submitted[ResultT] | Duplicate[ResultT]]:
        """Submit many jobs with the same options (those of `submit`) in one transaction: all
        are stored or none (with `connection`: in the application's transaction). Debounced or
        throttled jobs apply in order: a later payload with the same key replaces an earlier
        one's (debounce) or is refused (throttle)."""
        options = _options(
            priority,
            delay,
            run_at,
            key,
            depends_on,
            on_dependency_failure,
            parent,
            tags,
            ttl,
            recurring,
            fail_fast,
            resources,
            max_reclaims,
            meta,
            debounce,
            throttle,
        )
        templates: dict[object, tuple[list[Any], JobType[Any, Any], str, bool]] = {}
        jobs: list[NewJob] = []
        explicit_key = options.get("key")
        seen: list[object] = []
        if self._chain is not None:
            payloads = list(payloads)  # the middleware see them
            seen.extend(payloads)
        for payload in payloads:
            cls = payload.__class__
            known = templates.get(cls)
            if known is None or cls is dict:
                job = self.build_job(payload, type, options)
                job_type = self.types[job.type]
                keyed = explicit_key is not None or job_type.key is not None
                fields = list(attrs.astuple(job, recurse=False))
                templates[cls] = (fields, job_type, f"submit {job_type.type}", keyed)
            else:
                # Options were checked once for this payload type: only the payload and the key
                # differ from one job to the next. Positional fields: keywords cost twice as much.
                fields, job_type, where, keyed = known
                fields[_PAYLOAD] = encode_payload(
                    payload,
                    expected=job_type.payload_type,
                    where=f"{where} payload",
                    shape=job_type.payload_shape,
                )
                fields[_KEY] = (
                    key_of(job_type, payload, explicit_key, where=where) if keyed else None
                )
                if job_type.flow.limited:  # each payload has its own rate key and cost
                    fields[_RATE_KEY], fields[_COST] = submitted(job_type, payload, where=where)
                if job_type.key_policy is not None:
                    fields[_FLOW_KEY] = flow_fields(job_type.key_policy, payload, where=where)[0]
                job = NewJob(*fields)
            jobs.append(job)
        results = await self._submit(jobs, seen, connection)
        return cast("list[Submitted[ResultT] | Duplicate[ResultT]]", results)

    async def _submit(
        self, jobs: list[NewJob], payloads: Sequence[object], connection: object | None = None
    ) -> Sequence[Submitted | Duplicate]:
        if self._chain is not None:
            return await self._chain.submit(
                payloads, jobs, lambda written: self._write(written, connection)
            )
        return await self._write(jobs, connection)

    async def _write(
        self, jobs: list[NewJob], connection: object | None = None
    ) -> list[Submitted | Duplicate]:
        if connection is not None:
            # Workers wake when the application commits (NOTIFY, or the file's data version).
            opened = self._hub.opened and self._hub.types_recorded
            return await submit_on(self.store, connection, jobs, None if opened else self.open)
        await self.open()
        with self._hub.holding_transitions():
            try:
                results = await self.store.submit(jobs)
            except StoreError as exc:
                parents = {job.parent_id for job in jobs if job.parent_id is not None}
                parent = parents.pop() if len(parents) == 1 else None
                state = await self._state_of(parent) if parent is not None else None
                raise scheduler_error(exc, job_id=parent, state=state) from exc
            if self.events.subscriber_count:
                for job, result in zip(jobs, results, strict=True):
                    if isinstance(result, Submitted) and not result.replaced:
                        self.events.publish(JobSubmitted(job_id=result.id, job_type=job.type))
        if self.worker is not None:
            delayed = [job.run_at for job in jobs if job.run_at is not None]
            self.worker.notify(min(delayed) if delayed else None)
        return results

    # -- queries ----------------------------------------------------------------------------

    async def get(self, job_id: JobRef) -> JobRecord | None:
        """One job's record, or None (`job_id`: the id, or what names the job)."""
        wanted = _job_id(job_id, "get")
        await self.open()
        with store_errors():
            return await self.store.get(wanted)

    async def jobs(
        self,
        *,
        state: JobState | str | Iterable[JobState | str] | None = None,
        domain: str | None = None,
        type: str | None = None,
        limit: int = 100,
    ) -> list[JobRecord]:
        """Jobs filtered by state(s), domain and type, oldest first."""
        await self.open()
        if state is None:
            states: tuple[JobState, ...] = ()
        elif isinstance(state, str):
            states = (_state(state),)
        else:
            states = tuple(_state(s) for s in state)
        with store_errors():
            return await self.store.list_jobs(states=states, domain=domain, type=type, limit=limit)

    async def snapshot(self) -> Snapshot:
        """Counts per domain and state, and the running jobs with their progress."""
        await self.open()
        with store_errors():
            counts = await self.store.counts()
            running = await self.store.list_jobs(states=(JobState.RUNNING,), limit=10_000)
        local = self.worker.running if self.worker is not None else {}
        rows = []
        for job in running:
            mine = local.get(job.id)
            rows.append(
                RunningJob(
                    id=job.id,
                    type=job.type,
                    worker_id=job.worker_id,
                    started_at=job.started_at,
                    progress=mine.progress if mine is not None else job.progress,
                    message=mine.message if mine is not None else job.progress_message,
                    deferred=mine.deferred if mine is not None else False,
                )
            )
        return Snapshot.from_counts(counts, rows)

    async def result(
        self,
        job_id: int | Submitted[ResultT] | Duplicate[ResultT],
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> ResultT:
        """Wait for a job to end and return its result; raise JobFailed if it ended otherwise,
        ResultTimeout (a TimeoutError) after `timeout` seconds, SchedulerClosed if the
        scheduler stops meanwhile.

        `job_id` is the id, or what `submit` returned. The result is decoded into the return
        annotation of the job type's handler (an attrs class comes back as one), when this
        scheduler knows the type; given the handle of a `submit(..., type=handler)`, type
        checkers know it too.
        """
        wanted = _job_id(job_id, "result")
        await self.open()
        job: JobRecord | None = None
        try:
            with anyio.fail_after(timeout), store_errors():
                while True:
                    finished = self._hub.next_end()
                    job = await self._get_while_open(wanted, job)
                    if job is None:
                        raise JobNotFound(wanted)
                    if job.state is JobState.COMPLETED:
                        return cast(ResultT, self._decode(job))
                    if job.terminal:
                        raise JobFailed(wanted, str(job.state), job.error)
                    with anyio.move_on_after(min(self.poll_interval, 0.25)):
                        await finished.wait()
        except TimeoutError:
            if timeout is None:
                raise
            raise ResultTimeout(wanted, timeout, job.state if job else None) from None

    async def _get_while_open(self, job_id: int, seen: JobRecord | None) -> JobRecord | None:
        """The job, for `result()`; SchedulerClosed once the scheduler's task closed the store."""
        state = seen.state if seen is not None else None
        if self._hub.closed:
            raise SchedulerClosed(job_id, state)
        try:
            return await self.store.get(job_id)
        except StoreError:
            if self._hub.closed:  # closed during the read
                raise SchedulerClosed(job_id, state) from None
            raise

    def _decode(self, job: JobRecord) -> object:
        job_type = self._registry.types.get(job.type)
        hint = job_type.result_type if job_type is not None else None
        return decode_result(job.result, hint, where=f"result of job {job.id} ({job.type})")

    def subscribe(self, buffer: int | None = None) -> Subscription:
        """Typed lifecycle events: `async with scheduler.subscribe() as events: async for event
        in events: ...` yields each `Event` published from now on."""
        return self.events.subscribe(self._hub.event_buffer if buffer is None else buffer)

    # -- control ----------------------------------------------------------------------------

    async def cancel(self, job_id: JobRef) -> JobState:
        """Cancel a job and its descendants; running ones see ctx.cancelled, then are cancelled."""
        await self.open()
        # the store reports each job it cancelled: the hub publishes them
        state: JobState = await self._control(self.store.cancel, job_id, "cancelled by request")
        await self._check_local_requests()
        self._hub.ended()
        return state

    async def pause(self, job_id: JobRef) -> int:
        """Pause a job and its descendants; a running one stops and waits, paused, for resume.

        Raises JobNotFound, or JobStateError for a job that has ended."""
        await self.open()
        count: int = await self._control(self.store.pause, job_id)
        await self._check_local_requests()
        return count

    async def resume(self, job_id: JobRef) -> int:
        """Resume a paused job and its descendants.

        Raises JobNotFound, or JobStateError for a job that has ended."""
        await self.open()
        count: int = await self._control(self.store.resume, job_id)
        if self.worker is not None:
            self.worker.notify()
        return count

    async def retry(self, job_id: JobRef) -> None:
        """Run an ended, unsuccessful job again with a fresh retry budget.

        Raises JobNotFound; JobStateError for a job that has not ended or has completed;
        JobKeyConflict if an active job holds its dedup key. A job that ended before its
        dependencies completed waits again for those still active (blocked); while one of
        them has ended without completing, the retry is refused with a JobStateError naming
        it: retry that dependency first.
        """
        await self.open()
        await self._control(self.store.retry, job_id)
        if self.worker is not None:
            self.worker.notify()

    async def _control(self, op: Any, job: JobRef, *args: Any) -> Any:
        """Run a control operation on one job (given by id or by what names it)."""
        job_id = _job_id(job, op.__name__)
        try:
            return await op(job_id, *args)
        except StoreError as exc:
            state = None if isinstance(exc, LookupError) else await self._state_of(job_id)
            raise scheduler_error(exc, job_id=job_id, state=state) from exc

    async def _state_of(self, job_id: int) -> JobState | None:
        """The job's state now, for an error message (None if it cannot be read)."""
        try:
            job = await self.store.get(job_id)
        except Exception:
            return None
        return job.state if job is not None else None

    async def _check_local_requests(self) -> None:
        """Let this process's worker see cancel and pause requests at once, not at its next beat."""
        if self.worker is not None:
            await self.worker.check_requests()

    # -- pausing a domain or job type -------------------------------------------------------

    async def pause_domain(self, domain: Domain | str) -> bool:
        """Start no more jobs of a domain, in any process, until `resume_domain`: running
        ones finish, pending ones wait. True if it was not paused already."""
        return await self._set_paused("domain", domain, True, "pause_domain")

    async def resume_domain(self, domain: Domain | str) -> bool:
        """Let the jobs of a paused domain start again. True if it was paused."""
        return await self._set_paused("domain", domain, False, "resume_domain")

    async def pause_type(self, job_type: JobType[Any, Any] | str) -> bool:
        """Start no more jobs of one type (``domain::name``, or the `JobType`), in any
        process, until `resume_type`. True if it was not paused already."""
        return await self._set_paused("type", job_type, True, "pause_type")

    async def resume_type(self, job_type: JobType[Any, Any] | str) -> bool:
        """Let the jobs of a paused job type start again. True if it was paused."""
        return await self._set_paused("type", job_type, False, "resume_type")

    async def paused(self) -> list[PausedFlow]:
        """The paused domains and job types (domains first, by name)."""
        await self.open()
        with store_errors():
            return await self.store.paused()

    async def _set_paused(self, kind: FlowKind, value: object, paused: bool, where: str) -> bool:
        name = flow_name(kind, value, where)
        await self.open()
        with store_errors():
            changed = await self.store.set_paused(kind, name, paused)
        if changed and not paused and self.worker is not None:
            self.worker.notify()
        return changed

    async def emit_event(self, name: str, payload: object = None) -> bool:
        """Emit a durable event (a latch: the first emit wins); True if this one set it."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"emit_event: event name must be a non-empty str, got {name!r}")
        await self.open()
        try:
            text = to_json(payload, where=f"emit_event {name!r} payload")
        except DurableError as exc:
            raise PayloadError(str(exc)) from None
        with store_errors():
            won = await self.store.emit_event(name, text)
        if won and self.worker is not None:
            self.worker.notify()
        return won

    # -- schedules --------------------------------------------------------------------------

    async def schedules(self) -> list[ScheduleRecord]:
        """Every recurring schedule."""
        await self.open()
        with store_errors():
            return await self.store.schedules()

    async def pause_schedule(self, schedule_id: int) -> ScheduleRecord:
        """Stop firing new occurrences until resumed.

        Raises ScheduleNotFound, or ScheduleStateError for a schedule that has ended."""
        await self.open()
        return await self._set_schedule("pause_schedule", schedule_id, "paused")

    async def resume_schedule(self, schedule_id: int) -> ScheduleRecord:
        """Fire again, from the next occurrence after now.

        Raises ScheduleNotFound, or ScheduleStateError for a schedule that has ended."""
        await self.open()
        with store_errors():
            current = await self.store.get_schedule(schedule_id)
        if current is None:
            message = f"resume_schedule: no schedule with id {schedule_id}"
            raise ScheduleNotFound(schedule_id, message)
        recurrence = recurrence_from_json(json.loads(current.spec))
        following = recurrence.next_run(time.time())
        return await self._set_schedule("resume_schedule", schedule_id, "active", following)

    async def cancel_schedule(self, schedule_id: int) -> ScheduleRecord:
        """Stop the schedule for good and cancel its occurrence if it has not started.

        Idempotent: a schedule that has already ended (cancelled, or finished its occurrences)
        is returned as it is. Raises ScheduleNotFound."""
        await self.open()
        try:
            return await self._set_schedule("cancel_schedule", schedule_id, "cancelled")
        except ScheduleStateError as exc:  # it has ended: what was asked for holds
            if exc.state not in _ENDED_SCHEDULES:
                raise
            with store_errors():
                current = await self.store.get_schedule(schedule_id)
            if current is None:
                raise
            return current

    async def _set_schedule(
        self, operation: str, schedule_id: int, state: str, next_run_at: float | None = None
    ) -> ScheduleRecord:
        try:
            return await self.store.set_schedule_state(schedule_id, state, next_run_at)
        except UnknownScheduleError as exc:
            message = f"{operation}: no schedule with id {schedule_id}"
            raise ScheduleNotFound(schedule_id, message) from exc
        except InvalidTransitionError as exc:
            current = None
            with contextlib.suppress(Exception):
                current = await self.store.get_schedule(schedule_id)
            now = current.state if current is not None else None
            raise ScheduleStateError(schedule_id, now, f"{operation}: {exc}") from exc
        except StoreError as exc:
            raise scheduler_error(exc) from exc

    # -- used by workers and the CLI --------------------------------------------------------

    def require_worker(self) -> Worker:
        """The embedded worker, or an error for a submit-only scheduler."""
        if self.worker is None:
            raise ConfigError(f"scheduler {self.id!r} was made with worker=False and runs no jobs")
        return self.worker


_ENDED_SCHEDULES = ("cancelled", "finished")


def _options(
    priority: object,
    delay: object,
    run_at: object,
    key: object,
    depends_on: Iterable[object],
    on_dependency_failure: str,
    parent: object,
    tags: Iterable[str] | None,
    ttl: object,
    recurring: object,
    fail_fast: bool,
    resources: Mapping[str, int] | None,
    max_reclaims: object,
    meta: Mapping[str, str] | None = None,
    debounce: object = None,
    throttle: object = None,
) -> dict[str, Any]:
    """The submit options as `build_job` takes them."""
    return {
        "priority": priority,
        "delay": delay,
        "run_at": run_at,
        "key": key,
        "depends_on": depends_on,
        "on_dependency_failure": on_dependency_failure,
        "parent": parent,
        "tags": tags,
        "ttl": ttl,
        "recurring": recurring,
        "fail_fast": fail_fast,
        "resources": resources,
        "max_reclaims": max_reclaims,
        "meta": meta,
        "debounce": debounce,
        "throttle": throttle,
    }


def _job_id(job: object, where: str) -> int:
    """The id of a job given as an int or as what names it (what `submit` returned, a record)."""
    job_id = job if isinstance(job, int) else getattr(job, "id", job)
    if isinstance(job_id, bool) or not isinstance(job_id, int):
        raise ConfigError(f"{where}: expected a job id, or what submit returned, got {job!r:.100}")
    return job_id


_NEW_JOB_FIELDS = [field.name for field in attrs.fields(NewJob)]
_PAYLOAD, _KEY = _NEW_JOB_FIELDS.index("payload"), _NEW_JOB_FIELDS.index("key")
_RATE_KEY, _COST = _NEW_JOB_FIELDS.index("rate_key"), _NEW_JOB_FIELDS.index("cost")
_FLOW_KEY = _NEW_JOB_FIELDS.index("flow_key")


def _state(value: JobState | str) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        raise ConfigError(
            f"unknown job state {value!r}; one of {', '.join(s.value for s in JobState)}"
        ) from None
