"""Worker: a Task that claims jobs in batches, runs them on a fixed pool of runners and reports
their outcomes in batches, renewing leases while they run."""

from __future__ import annotations

import inspect
import logging
import math
import os
import socket
import time
import traceback
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from wireframe.durable import LeaseLost, Suspend
from wireframe.scheduler.codec import decode_payload, encode_result
from wireframe.scheduler.domain import Domain, JobType, check_resources, check_tags
from wireframe.scheduler.errors import ConfigError, Permanent
from wireframe.scheduler.events import (
    JobCancelled,
    JobCompleted,
    JobFailedEvent,
    JobPreempted,
    JobRetrying,
    JobStarted,
    JobSuspended,
    JobWaiting,
)
from wireframe.scheduler.limits import Limits
from wireframe.scheduler.priority import AGING_STEP, PRIORITY_MAX
from wireframe.scheduler.recurring import recurrence_from_json
from wireframe.service import StopReceiver, Task, TaskKind
from wireframe.store import (
    FAR_FUTURE,
    Beat,
    ClaimRequest,
    Complete,
    Fail,
    JobRecord,
    LeaseStatus,
    Outcome,
    Release,
    Store,
)
from wireframe.store.records import ReleaseTo

if TYPE_CHECKING:
    from wireframe.scheduler.scheduler import Scheduler

log = logging.getLogger("wireframe.scheduler")


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


class Worker(Task):
    """Runs jobs of the given domains from a store; a Task, so a Service hosts it."""

    kind = TaskKind.TASK

    def __init__(
        self,
        store: Store | str,
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
        id: str = "worker",
        scheduler: Scheduler | None = None,
    ) -> None:
        from wireframe.scheduler.scheduler import Scheduler

        self.id = id
        self.scheduler = scheduler or Scheduler(store, domains=domains, worker=False)
        scheduler = self.scheduler
        self.worker_id = worker_id or default_worker_id()
        self.claim_ttl = _positive(claim_ttl, "claim_ttl")
        self.batch_size = _count(batch_size, "batch_size")
        self.tags = check_tags(tags, where="Worker tags")
        self.aging_interval = (
            None if aging_interval is None else _positive(aging_interval, "aging_interval")
        )
        self.poll_interval = _positive(poll_interval, "poll_interval")
        self.cancel_grace = _non_negative(cancel_grace, "cancel_grace")
        self.keep_history = (
            None if keep_history is None else _positive(keep_history, "keep_history")
        )
        self.shutdown = shutdown or ShutdownMode.graceful()
        self.heartbeat_interval = min(self.claim_ttl / 4, 15.0)
        by_name = scheduler.domains
        self.domain_names = tuple(by_name)
        self.types: dict[str, JobType[Any, Any]] = {
            t.type: t for d in by_name.values() for t in d.jobs.values()
        }
        self.limits = Limits(
            _count(max_concurrency, "max_concurrency"),
            {d.name: d.max_concurrency for d in by_name.values() if d.max_concurrency is not None},
            {
                t.type: t.max_concurrency
                for t in self.types.values()
                if t.max_concurrency is not None
            },
            check_resources(resources, where="Worker resources"),
        )
        self.running: dict[int, Running] = {}
        self._wake = anyio.Event()
        self._outcomes: list[tuple[Running, Outcome]] = []
        self._outcomes_ready = anyio.Event()
        self._idle = anyio.Event()
        self._slot_freed = anyio.Event()
        self._resuming = 0
        self._deferred = 0
        self._runners = 0
        self._add_runner: Callable[[], None] = lambda: None
        self._stopping = False
        self._send: MemoryObjectSendStream[Running] | None = None

    # -- public ---------------------------------------------------------------------------

    def notify(self) -> None:
        """Wake the claim loop now (called by an in-process submit)."""
        self._wake.set()

    def interrupt(self, job_id: int, reason: str) -> bool:
        """Ask a job this worker runs to stop (cancel, pause); False if it does not run it here."""
        running = self.running.get(job_id)
        if running is None:
            return False
        running.interrupt(reason, self.cancel_grace if reason == "cancelled" else 0.0)
        return True

    async def heartbeat_now(self, running: Running) -> None:
        """Renew one lease at once; lose it and the handler is cancelled."""
        status = await self.scheduler.store.heartbeat([self._beat(running)], self.claim_ttl)
        self._apply_status(running, status.get(running.record.id, LeaseStatus.LOST))
        await anyio.lowlevel.checkpoint()

    async def defer(
        self, running: Running, condition: Callable[[], Any], poll_interval: float
    ) -> None:
        """Run `condition` every `poll_interval` seconds without holding a concurrency slot."""
        if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
            raise ConfigError(f"defer_until: poll_interval must be a number, got {poll_interval!r}")
        if not poll_interval > 0:
            raise ConfigError(f"defer_until: poll_interval must be > 0, got {poll_interval!r}")
        if await _truth(condition):
            return
        running.deferred = True
        self._deferred += 1
        self.limits.give_back(running.record)
        if self._runners < self.limits.max_concurrency + self._deferred:
            self._add_runner()  # this runner waits here: another one runs the freed slot
        self._slot_freed.set()
        self._wake.set()
        try:
            while not await _truth(condition):  # noqa: ASYNC110 (polling an outside condition)
                await anyio.sleep(poll_interval)
            self._resuming += 1
            try:
                while not self.limits.can_take(running.record):
                    self._slot_freed = anyio.Event()
                    await self._slot_freed.wait()
            finally:
                self._resuming -= 1
        except BaseException:
            self._deferred -= 1  # cancelled while deferred: it holds no slot to give back
            raise
        self.limits.take(running.record)
        self._deferred -= 1
        running.deferred = False

    # -- task -----------------------------------------------------------------------------

    async def run(self, stop: StopReceiver) -> None:
        """Claim and run jobs until stop, then shut down as `self.shutdown` says."""
        await self.scheduler.open()
        send, receive = anyio.create_memory_object_stream[Running](
            self.limits.max_concurrency + self.batch_size
        )
        self._send = send
        async with anyio.create_task_group() as runners:

            def add_runner() -> None:
                runners.start_soon(self._runner, receive.clone())

            self._add_runner = add_runner
            for _ in range(self.limits.max_concurrency):
                self._add_runner()
            async with anyio.create_task_group() as loops:
                loops.start_soon(self._flush_loop)
                loops.start_soon(self._heartbeat_loop)
                loops.start_soon(self._housekeeping_loop)
                async with anyio.create_task_group() as claiming:
                    claiming.start_soon(self._claim_loop)
                    await stop.wait()
                    self._stopping = True
                    claiming.cancel_scope.cancel()
                await self._drain(receive)
                await self._wind_down()
                loops.cancel_scope.cancel()
            send.close()
            receive.close()
        await self._flush()

    # -- claiming ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        store = self.scheduler.store
        while True:
            self._wake = anyio.Event()
            limits = self.limits
            busy = limits.running
            threshold = (
                1 if busy == 0 else max(1, min(self.batch_size, limits.max_concurrency) // 4)
            )
            claimed = 0
            free = limits.free - self._resuming  # deferred jobs coming back go first
            if free >= threshold:
                want = min(free, self.batch_size)
                request = ClaimRequest(
                    self.worker_id,
                    want,
                    self.claim_ttl,
                    self.domain_names,
                    self.tags,
                    exclude_types=limits.full_types(),
                    exclude_domains=limits.full_domains(),
                    scan=want * 4 if limits.constrained else want,
                )
                chooser = limits.chooser(want) if limits.constrained else None
                with anyio.CancelScope(shield=True):
                    jobs = await store.claim(request, chooser)
                    self._start(jobs)
                claimed = len(jobs)
                if claimed == want:
                    continue
            elif limits.free == 0:
                await self._maybe_preempt()
            await self._sleep_until_work(claimed)

    def _start(self, jobs: Sequence[JobRecord]) -> None:
        assert self._send is not None
        for job in jobs:
            running = Running(job, self.types.get(job.type))
            self.running[job.id] = running
            self.limits.take(job)
            self._send.send_nowait(running)

    async def _sleep_until_work(self, claimed: int) -> None:
        store = self.scheduler.store
        timeout = self.poll_interval
        if claimed == 0 and self.limits.free > 0:
            due = await store.next_due_at()
            if due is not None:
                timeout = max(0.0, min(timeout, due - time.time()))
        if self._wake.is_set():
            return
        async with anyio.create_task_group() as tg:

            async def local() -> None:
                await self._wake.wait()
                tg.cancel_scope.cancel()

            async def remote() -> None:
                await store.wait_for_work(timeout)
                tg.cancel_scope.cancel()

            tg.start_soon(local)
            if self.limits.free > 0:
                tg.start_soon(remote)
            else:
                with anyio.move_on_after(timeout):
                    await self._wake.wait()
                tg.cancel_scope.cancel()

    async def _maybe_preempt(self) -> None:
        victims = [
            r
            for r in self.running.values()
            if r.job_type is not None and r.job_type.preemptible and r.stop_reason is None
        ]
        if not victims:
            return
        victim = min(victims, key=lambda r: (r.record.base_priority, -r.record.id))
        top = await self.scheduler.store.top_pending_priority(self.domain_names, self.tags)
        if top is not None and top > victim.record.base_priority:
            log.info(
                "preempting job %s (priority %s) for a pending job of priority %s",
                victim.record.id,
                victim.record.base_priority,
                top,
            )
            victim.interrupt("preempted")

    # -- running ----------------------------------------------------------------------------

    async def _runner(self, receive: MemoryObjectReceiveStream[Running]) -> None:
        self._runners += 1
        try:
            await self._run_jobs(receive)
        finally:
            self._runners -= 1

    async def _run_jobs(self, receive: MemoryObjectReceiveStream[Running]) -> None:
        with receive:
            streak = 0
            while True:
                if self._runners > self.limits.max_concurrency + self._deferred:
                    return  # an extra runner started for a deferred job that has resumed
                # Take queued jobs without a trip through the event loop, but still yield every
                # so often so that the flusher and the claim loop keep up.
                try:
                    running = receive.receive_nowait()
                    streak += 1
                    if streak % 32 == 0:
                        await anyio.lowlevel.checkpoint()
                except anyio.WouldBlock:
                    try:
                        running = await receive.receive()
                    except anyio.EndOfStream:
                        return
                except anyio.EndOfStream:
                    return
                outcome = await self._execute(running)
                self.running.pop(running.record.id, None)
                if not running.deferred:
                    self.limits.give_back(running.record)
                    self._slot_freed.set()
                if outcome is not None:
                    self._outcomes.append((running, outcome))
                    self._outcomes_ready.set()
                self._wake.set()
                if not self.running:
                    self._idle.set()

    async def _execute(self, running: Running) -> Outcome | None:
        record = running.record
        job_type = running.job_type
        events = self.scheduler.events
        if running.stop_reason == "shutdown":
            return Release(record.lease, "pending", "worker shut down before the job started")
        if job_type is None:
            known = ", ".join(sorted(self.types)) or "none"
            missing = (
                f"no handler for job type {record.type!r} in worker {self.worker_id} "
                f"(known types: {known})"
            )
            return self._failure(running, missing, None, permanent=True)
        if events.subscriber_count:
            events.publish(
                JobStarted(
                    job_id=record.id,
                    job_type=record.type,
                    attempt=record.attempt,
                    worker_id=self.worker_id,
                )
            )
        finalize = record.phase == "finalize"
        handler = job_type.finalize_fn if finalize else job_type.execute
        if handler is None:
            return Complete(record.lease, record.result)
        result: Any = None
        error: BaseException | None = None
        suspended: Suspend | None = None
        timed_out = False
        with anyio.CancelScope() as scope:
            running.scope = scope
            if job_type.timeout is not None:
                scope.deadline = anyio.current_time() + job_type.timeout
            if running.stop_reason is not None:
                scope.deadline = anyio.current_time()
            try:
                payload = decode_payload(record.payload, job_type.payload_type)
                ctx = self.scheduler.make_context(running)
                result = await handler(payload, ctx)
            except Exception as exc:
                error = exc
            except Suspend as exc:
                suspended = exc
            except LeaseLost:
                running.stop_reason = "lease_lost"
        running.scope = None
        if scope.cancelled_caught:
            timed_out = running.stop_reason is None
        reason = running.stop_reason
        if reason == "lease_lost":
            log.warning("job %s: lease lost; dropping its outcome", record.id)
            return None
        if reason in ("cancelled", "child_failed"):
            events.publish(JobCancelled(job_id=record.id, job_type=record.type))
            return Release(record.lease, "cancelled", "cancelled while running")
        if reason in ("preempted", "shutdown", "paused") and (
            scope.cancelled_caught or error is not None
        ):
            if reason == "preempted":
                events.publish(JobPreempted(job_id=record.id, job_type=record.type))
            to: ReleaseTo = "paused" if reason == "paused" else "pending"
            return Release(record.lease, to, reason)
        if suspended is not None and not scope.cancelled_caught:
            if events.subscriber_count:
                events.publish(
                    JobSuspended(
                        job_id=record.id,
                        job_type=record.type,
                        until=suspended.until,
                        reason=suspended.reason,
                    )
                )
            until = suspended.until if suspended.until is not None else FAR_FUTURE
            return Release(record.lease, "suspended", suspended.reason, until, suspended.wait_for)
        if timed_out:
            message = f"timed out after {job_type.timeout}s"
            return self._failure(running, message, None, outcome="timeout")
        if error is not None:
            text = f"{type(error).__name__}: {error}"
            tb = "".join(traceback.format_exception(error))
            return self._failure(running, text, tb, permanent=isinstance(error, Permanent))
        if finalize and result is None:
            encoded = record.result
        else:
            try:
                encoded = encode_result(result, where=f"result of job {record.id} ({record.type})")
            except Exception as exc:
                return self._failure(running, f"{type(exc).__name__}: {exc}", None, permanent=True)
        needs_finalize = not finalize and job_type.finalize_fn is not None
        return Complete(record.lease, encoded, needs_finalize)

    def _failure(
        self,
        running: Running,
        error: str,
        tb: str | None,
        *,
        permanent: bool = False,
        outcome: str = "failed",
    ) -> Fail:
        record = running.record
        retry = running.job_type.retry if running.job_type is not None else None
        will_retry = (
            not permanent
            and retry is not None
            and retry.should_retry(record.attempt)
            and record.attempt < record.max_attempts
        )
        retry_at = None
        events = self.scheduler.events
        if will_retry and retry is not None:
            delay = retry.delay(record.attempt)
            retry_at = time.time() + delay
            events.publish(
                JobRetrying(
                    job_id=record.id, job_type=record.type, attempt=record.attempt, delay=delay
                )
            )
        events.publish(
            JobFailedEvent(
                job_id=record.id,
                job_type=record.type,
                error=error,
                attempt=record.attempt,
                will_retry=will_retry,
            )
        )
        log.info(
            "job %s (%s) attempt %s failed: %s%s",
            record.id,
            record.type,
            record.attempt,
            error,
            " (will retry)" if will_retry else "",
        )
        return Fail(record.lease, error, tb, retry_at, outcome)

    # -- reporting --------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready = anyio.Event()
            await self._flush()

    async def _flush(self) -> None:
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            with anyio.CancelScope(shield=True):
                applied = await self.scheduler.store.finish([outcome for _, outcome in batch])
                self._after_flush(batch, applied)
                if self.running and any(not isinstance(o, Complete) for _, o in batch):
                    # A failure or cancellation may have cascaded to jobs running here.
                    await self.check_requests()

    async def check_requests(self) -> None:
        """Renew every lease now, so cancel and pause requests reach running handlers at once."""
        current = list(self.running.values())
        if not current:
            return
        status = await self.scheduler.store.heartbeat(
            [self._beat(r) for r in current], self.claim_ttl
        )
        for running in current:
            if running.record.id in self.running:
                self._apply_status(running, status.get(running.record.id, LeaseStatus.LOST))

    def _after_flush(self, batch: list[tuple[Running, Outcome]], applied: list[bool]) -> None:
        events = self.scheduler.events
        if not events.subscriber_count and all(applied):
            self.scheduler.finished_batch()
            return
        for (running, outcome), ok in zip(batch, applied, strict=True):
            record = running.record
            if not ok:
                log.warning("job %s: outcome rejected, the lease was no longer held", record.id)
                continue
            if isinstance(outcome, Complete):
                if record.active_children or outcome.needs_finalize:
                    events.publish(
                        JobWaiting(
                            job_id=record.id, job_type=record.type, children=record.active_children
                        )
                    )
                else:
                    events.publish(
                        JobCompleted(
                            job_id=record.id,
                            job_type=record.type,
                            duration=time.time() - running.started,
                        )
                    )
        self.scheduler.finished_batch()

    # -- leases -----------------------------------------------------------------------------

    def _beat(self, running: Running) -> Beat:
        return Beat(running.record.lease, running.progress, running.message)

    def _apply_status(self, running: Running, status: LeaseStatus) -> None:
        if status is LeaseStatus.LOST:
            running.interrupt("lease_lost")
        elif status is LeaseStatus.CANCEL_REQUESTED:
            running.interrupt("cancelled", self.cancel_grace)
        elif status is LeaseStatus.PAUSE_REQUESTED:
            running.interrupt("paused")

    async def _heartbeat_loop(self) -> None:
        while True:
            await anyio.sleep(self.heartbeat_interval)
            with anyio.CancelScope(shield=True):
                await self.check_requests()

    async def _housekeeping_loop(self) -> None:
        store = self.scheduler.store
        last_aging = last_prune = time.time()
        while True:
            now = time.time()
            if self.aging_interval is not None and now - last_aging >= self.aging_interval / 2:
                last_aging = now
                await store.age(self.aging_interval, AGING_STEP, PRIORITY_MAX)
            if self.keep_history is not None and now - last_prune >= min(60.0, self.keep_history):
                last_prune = now
                await store.prune(now - self.keep_history)
            fired = await self._fire_schedules()
            if fired:
                self.notify()
            await anyio.sleep(min(self.poll_interval, 1.0))

    async def _fire_schedules(self) -> int:
        store = self.scheduler.store
        fired = 0
        for schedule in await store.due_schedules(self.domain_names):
            assert schedule.next_run_at is not None
            recurrence = recurrence_from_json(_json(schedule.spec))
            following = recurrence.next_run(max(time.time(), schedule.next_run_at))
            result = await store.fire_schedule(schedule.id, schedule.next_run_at, following)
            if result is not None and result.job_id is not None:
                fired += 1
        return fired

    # -- stopping ---------------------------------------------------------------------------

    async def _drain(self, receive: MemoryObjectReceiveStream[Running]) -> None:
        """Mark jobs claimed but not started so runners release them at once."""
        for running in self.running.values():
            if running.scope is None:
                running.stop_reason = "shutdown"

    async def _wind_down(self) -> None:
        for running in list(self.running.values()):
            if running.deferred:  # holds no slot and only polls: put it back at once
                running.interrupt("shutdown")
        if self.running and self.shutdown.seconds > 0:
            with anyio.move_on_after(self.shutdown.seconds):
                while self.running:
                    self._idle = anyio.Event()
                    await self._idle.wait()
        for running in list(self.running.values()):
            running.interrupt("shutdown")
        while self.running:
            self._idle = anyio.Event()
            with anyio.move_on_after(1.0):
                await self._idle.wait()
        await self._flush()


def _json(text: str) -> dict[str, object]:
    import json

    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def _positive(value: object, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"Worker {name} must be a finite number > 0, got {value!r}")
    return float(value)


def _non_negative(value: object, name: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ConfigError(f"Worker {name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"Worker {name} must be an int >= 1, got {value!r}")
    return value


async def _truth(condition: Callable[[], Any]) -> bool:
    value = condition()
    if inspect.isawaitable(value):
        value = await value
    return bool(value)
