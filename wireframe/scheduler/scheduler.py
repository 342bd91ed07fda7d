"""Scheduler: accepts submissions, answers queries and control calls, and (by default) runs jobs
through an embedded Worker. It is a Task, so a Service hosts it beside other tasks."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio
import attrs

from wireframe.durable.run import to_json
from wireframe.scheduler._config import worker_config
from wireframe.scheduler._front import Front
from wireframe.scheduler._hub import Hub
from wireframe.scheduler._registry import Registry
from wireframe.scheduler._running import default_worker_id
from wireframe.scheduler.codec import decode_result, encode_payload
from wireframe.scheduler.domain import Domain, JobType
from wireframe.scheduler.errors import ConfigError, JobFailed, JobNotFound
from wireframe.scheduler.events import JobSubmitted
from wireframe.scheduler.recurring import recurrence_from_json
from wireframe.scheduler.shutdown import ShutdownMode
from wireframe.scheduler.snapshot import RunningJob, Snapshot
from wireframe.scheduler.submission import key_of
from wireframe.scheduler.worker import CLOSE_TIMEOUT, Worker
from wireframe.service import StopReceiver, Task, TaskKind
from wireframe.store import (
    JobRecord,
    JobState,
    NewJob,
    ScheduleRecord,
    Store,
    SubmitResult,
    Submitted,
    UnknownJobError,
    store_from_url,
)


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
    ) -> None:
        self.id = id
        self._registry = Registry(domains, where="Scheduler")
        for value in state:
            self._registry.provide(value)
        self._hub = Hub(store if isinstance(store, Store) else store_from_url(store), event_buffer)
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
        self, payload: object, *, type: str | JobType[Any, Any] | None = None, **options: Any
    ) -> SubmitResult:
        """Submit one job; return Submitted(id) or Duplicate(existing_id).

        The payload's field types are checked against its class's annotations first: a
        PayloadError names the field (``payload.items[2].n``) and the bad value.
        Options: priority, delay,
        run_at, key, depends_on, on_dependency_failure, parent, tags, ttl, recurring, fail_fast,
        resources."""
        return (await self._submit([self.build_job(payload, type, options)]))[0]

    async def submit_many(
        self,
        payloads: Iterable[object],
        *,
        type: str | JobType[Any, Any] | None = None,
        **options: Any,
    ) -> list[SubmitResult]:
        """Submit many jobs with the same options in one transaction: all are stored or none."""
        templates: dict[object, tuple[list[Any], JobType[Any, Any], str, bool]] = {}
        jobs: list[NewJob] = []
        explicit_key = options.get("key")
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
                job = NewJob(*fields)
            jobs.append(job)
        return await self._submit(jobs)

    async def _submit(self, jobs: list[NewJob]) -> list[SubmitResult]:
        await self.open()
        with self._hub.holding_transitions():
            try:
                results = await self.store.submit(jobs)
            except UnknownJobError as exc:
                raise JobNotFound(exc.job_id, str(exc)) from exc
            if self.events.subscriber_count:
                for job, result in zip(jobs, results, strict=True):
                    if isinstance(result, Submitted):
                        self.events.publish(JobSubmitted(job_id=result.id, job_type=job.type))
        if self.worker is not None:
            delayed = [job.run_at for job in jobs if job.run_at is not None]
            self.worker.notify(min(delayed) if delayed else None)
        return results

    # -- queries ----------------------------------------------------------------------------

    async def get(self, job_id: int) -> JobRecord | None:
        """One job's record, or None."""
        await self.open()
        return await self.store.get(job_id)

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
        return await self.store.list_jobs(states=states, domain=domain, type=type, limit=limit)

    async def snapshot(self) -> Snapshot:
        """Counts per domain and state, and the running jobs with their progress."""
        await self.open()
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

    async def result(self, job_id: int, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait for a job to end; return its result, or raise JobFailed (or TimeoutError)."""
        await self.open()
        with anyio.fail_after(timeout):
            while True:
                finished = self._hub.next_end()
                job = await self.store.get(job_id)
                if job is None:
                    raise JobNotFound(job_id)
                if job.state is JobState.COMPLETED:
                    return decode_result(job.result)
                if job.terminal:
                    raise JobFailed(job_id, str(job.state), job.error)
                with anyio.move_on_after(min(self.poll_interval, 0.25)):
                    await finished.wait()

    def subscribe(self, buffer: int | None = None) -> AbstractAsyncContextManager[Any]:
        """Typed lifecycle events: `async with scheduler.subscribe() as events: ...`."""
        return self.events.subscribe(buffer or self._hub.event_buffer)

    # -- control ----------------------------------------------------------------------------

    async def cancel(self, job_id: int) -> JobState:
        """Cancel a job and its descendants; running ones see ctx.cancelled, then are cancelled."""
        await self.open()
        try:
            state = await self.store.cancel(job_id, "cancelled by request")  # the store reports
        except UnknownJobError as exc:  # each job it cancelled: the hub publishes them
            raise JobNotFound(job_id, str(exc)) from exc
        await self._check_local_requests()
        self._hub.ended()
        return state

    async def pause(self, job_id: int) -> int:
        """Pause a job and its descendants; a running one stops and waits, paused, for resume."""
        await self.open()
        count: int = await self._control(self.store.pause, job_id)
        await self._check_local_requests()
        return count

    async def resume(self, job_id: int) -> int:
        """Resume a paused job and its descendants."""
        await self.open()
        count: int = await self._control(self.store.resume, job_id)
        if self.worker is not None:
            self.worker.notify()
        return count

    async def retry(self, job_id: int) -> None:
        """Run an ended, unsuccessful job again with a fresh retry budget.

        A job that ended before its dependencies completed waits again for those still active
        (blocked); while one of them has ended without completing, the retry is refused with
        InvalidTransitionError naming it: retry that dependency first.
        """
        await self.open()
        await self._control(self.store.retry, job_id)
        if self.worker is not None:
            self.worker.notify()

    async def _control(self, op: Any, job_id: int) -> Any:
        try:
            return await op(job_id)
        except UnknownJobError as exc:
            raise JobNotFound(job_id, str(exc)) from exc

    async def _check_local_requests(self) -> None:
        """Let this process's worker see cancel and pause requests at once, not at its next beat."""
        if self.worker is not None:
            await self.worker.check_requests()

    async def emit_event(self, name: str, payload: object = None) -> bool:
        """Emit a durable event (a latch: the first emit wins); True if this one set it."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"emit_event: event name must be a non-empty str, got {name!r}")
        await self.open()
        won = await self.store.emit_event(name, to_json(payload, where=f"event {name!r}"))
        if won and self.worker is not None:
            self.worker.notify()
        return won

    # -- schedules --------------------------------------------------------------------------

    async def schedules(self) -> list[ScheduleRecord]:
        """Every recurring schedule."""
        await self.open()
        return await self.store.schedules()

    async def pause_schedule(self, schedule_id: int) -> ScheduleRecord:
        """Stop firing new occurrences until resumed."""
        await self.open()
        return await self.store.set_schedule_state(schedule_id, "paused")

    async def resume_schedule(self, schedule_id: int) -> ScheduleRecord:
        """Fire again, from the next occurrence after now."""
        await self.open()
        current = await self.store.get_schedule(schedule_id)
        if current is None:
            raise JobNotFound(schedule_id, f"no schedule with id {schedule_id}")
        recurrence = recurrence_from_json(json.loads(current.spec))
        following = recurrence.next_run(time.time())
        return await self.store.set_schedule_state(schedule_id, "active", following)

    async def cancel_schedule(self, schedule_id: int) -> ScheduleRecord:
        """Stop the schedule for good and cancel its occurrence if it has not started."""
        await self.open()
        return await self.store.set_schedule_state(schedule_id, "cancelled")

    # -- used by workers and the CLI --------------------------------------------------------

    def require_worker(self) -> Worker:
        """The embedded worker, or an error for a submit-only scheduler."""
        if self.worker is None:
            raise ConfigError(f"scheduler {self.id!r} was made with worker=False and runs no jobs")
        return self.worker


_NEW_JOB_FIELDS = [field.name for field in attrs.fields(NewJob)]
_PAYLOAD, _KEY = _NEW_JOB_FIELDS.index("payload"), _NEW_JOB_FIELDS.index("key")


def _state(value: JobState | str) -> JobState:
    try:
        return JobState(value)
    except ValueError:
        raise ConfigError(
            f"unknown job state {value!r}; one of {', '.join(s.value for s in JobState)}"
        ) from None
