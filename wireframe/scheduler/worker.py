"""Worker: a Task that claims jobs in batches, runs them on a fixed pool of runners and reports
their outcomes in batches, renewing leases while they run."""

from __future__ import annotations

import heapq
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from wireframe.scheduler.defer import defer
from wireframe.scheduler.domain import Domain, JobType, check_resources, check_tags
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.events import (
    JobCompleted,
    JobWaiting,
)
from wireframe.scheduler.execute import run_jobs
from wireframe.scheduler.handoff import Handoff
from wireframe.scheduler.limits import Limits
from wireframe.scheduler.maintenance import housekeeping_loop
from wireframe.scheduler.running import Running, ShutdownMode, default_worker_id
from wireframe.service import StopReceiver, Task, TaskKind
from wireframe.store import (
    FAR_FUTURE,
    Beat,
    Chooser,
    ClaimRequest,
    Complete,
    Fail,
    JobRecord,
    LeaseStatus,
    Outcome,
    Release,
    Store,
)

if TYPE_CHECKING:
    from wireframe.scheduler.scheduler import Scheduler

log = logging.getLogger("wireframe.scheduler")

HOUSEKEEP_EVERY = 0.05
"""The least time between a busy worker's housekeeping passes (waking due jobs, expiring ttls,
reclaiming leases) when a due time it knows of has come."""


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
        self._in_flight: list[tuple[Running, Outcome]] = []  # outcomes being written
        self._housekept = -math.inf
        self._due: float | None = None  # the store's earliest due time, as last asked
        self._hints: list[float] = []  # a heap of due times this process made
        self._deferred = 0
        self._runners = 0
        self._add_runner: Callable[[], None] = lambda: None
        self._stopping = False
        self._claiming = False  # a claim (alone, or with a flush) is under way
        self._jobs: Handoff[Running] = Handoff()

    # -- public ---------------------------------------------------------------------------

    def notify(self, due: float | None = None) -> None:
        """Wake the claim loop now (called by an in-process submit); `due`: a delayed job's time."""
        if due is not None:
            self._expect(due)
        self._wake.set()

    def _expect(self, due: float) -> None:
        """Note that a job becomes due at `due` (epoch seconds): housekeep then, even if busy."""
        if due < FAR_FUTURE:
            heapq.heappush(self._hints, due)

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
        await defer(self, running, condition, poll_interval)

    # -- task -----------------------------------------------------------------------------

    async def run(self, stop: StopReceiver) -> None:
        """Claim and run jobs until stop, then shut down as `self.shutdown` says."""
        await self.scheduler.open()
        try:
            await self._work(stop)
        finally:
            if self.scheduler.worker is not self:  # a standalone worker owns its store
                with anyio.CancelScope(shield=True):
                    await self.scheduler.close()

    async def _work(self, stop: StopReceiver) -> None:
        jobs = self._jobs = Handoff[Running]()
        async with anyio.create_task_group() as runners:

            def add_runner() -> None:
                runners.start_soon(self._runner, jobs)

            self._add_runner = add_runner
            for _ in range(self.limits.max_concurrency):
                self._add_runner()
            async with anyio.create_task_group() as loops:
                loops.start_soon(self._flush_loop)
                loops.start_soon(self._heartbeat_loop)
                loops.start_soon(housekeeping_loop, self)
                async with anyio.create_task_group() as claiming:
                    claiming.start_soon(self._claim_loop)
                    await stop.wait()
                    self._stopping = True
                    claiming.cancel_scope.cancel()
                self._drain()
                await self._wind_down()
                loops.cancel_scope.cancel()
            jobs.close()
        await self._flush()

    # -- claiming ---------------------------------------------------------------------------

    async def _claim_loop(self) -> None:
        store = self.scheduler.store
        while True:
            self._wake = anyio.Event()
            claimed = -1  # no claim made
            if self._claiming or self._flusher_claims():
                # The flusher claims with its write, one trip for both; it wakes us when done.
                await self._wake.wait()
                continue
            asked = self._claim_request()
            if asked is not None:
                request, chooser = asked
                self._claiming = True
                try:
                    with anyio.CancelScope(shield=True):
                        jobs = await store.claim(request, chooser)
                        self._start(jobs)
                finally:
                    self._claiming = False
                claimed = len(jobs)
                # Housekeeping after the claim, so new work starts first; it may free more.
                if self._housekeeping_due() and await store.housekeep():
                    continue
                if claimed == request.limit:
                    continue
            elif self.limits.free == 0:
                await self._maybe_preempt()
            await self._sleep_until_work(claimed)

    def _flusher_claims(self) -> bool:
        """Whether outcomes are queued or being written by a flusher that claims with them."""
        return bool(self._outcomes or self._in_flight) and not (
            self._stopping or self.limits.constrained
        )

    def _claim_request(self) -> tuple[ClaimRequest, Chooser | None] | None:
        """What to claim now, if enough slots are free for a claim to be worth its trip."""
        limits = self.limits
        busy = limits.running
        threshold = 1 if busy == 0 else max(1, min(self.batch_size, limits.max_concurrency) // 4)
        # Deferred jobs coming back go first. Outcomes not yet stored count against the
        # slots beyond max_concurrency: a crash can make at most twice max_concurrency
        # jobs run again (those running and those whose completion was not yet written).
        backlog = len(self._outcomes) + len(self._in_flight)
        free = limits.free - self._resuming - max(0, backlog - limits.max_concurrency)
        if free < threshold:
            return None
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
            housekeep=False,
        )
        return request, limits.chooser(want) if limits.constrained else None

    def _housekeeping_due(self) -> bool:
        """Housekeep on a claim when a known due time has come, else every `poll_interval`.

        A busy worker knows when the jobs it retries or puts to sleep, the delayed jobs its own
        process submits and (when last idle) the store's earliest due job become due; those it
        wakes on time, at most every HOUSEKEEP_EVERY. Delayed jobs other processes submitted
        since, ttls and dead workers' leases wait for the fallback pass every `poll_interval`,
        as work another process adds does while NOTIFY is lost: housekeeping every 50 ms on
        every busy worker was a sixth of all a worker's transactions.
        """
        now = time.monotonic()
        if now - self._housekept < HOUSEKEEP_EVERY:
            return False
        wall = time.time()
        hints = self._hints
        due = (self._due is not None and wall >= self._due) or bool(hints and hints[0] <= wall)
        if not due and now - self._housekept < self.poll_interval:
            return False
        while hints and hints[0] <= wall:
            heapq.heappop(hints)
        self._housekept, self._due = now, None
        return True

    def _start(self, jobs: Sequence[JobRecord]) -> None:
        for job in jobs:
            running = Running(job, self.types.get(job.type))
            self.running[job.id] = running
            self.limits.take(job)
            self._jobs.put(running)

    async def _sleep_until_work(self, claimed: int) -> None:
        store = self.scheduler.store
        timeout = self.poll_interval
        if claimed == 0 and self.limits.free > 0:  # a claim found nothing: when is work due?
            self._due = await store.next_due_at()
        if claimed >= 0:  # claims may go on: wake to housekeep when a due time comes
            due = min(
                math.inf if self._due is None else self._due,
                self._hints[0] if self._hints else math.inf,
            )
            if due < math.inf:  # then, or once housekeeping may run again
                gap = self._housekept + HOUSEKEEP_EVERY - time.monotonic()
                timeout = max(0.0, min(timeout, max(due - time.time(), gap)))
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

    async def _runner(self, jobs: Handoff[Running]) -> None:
        self._runners += 1
        try:
            await self._run_jobs(jobs)
        finally:
            self._runners -= 1

    async def _run_jobs(self, jobs: Handoff[Running]) -> None:
        await run_jobs(self, jobs)

    def job_done(self, running: Running, outcome: Outcome | None) -> None:
        """A runner is done with `running`: free its slot and queue its outcome."""
        self.running.pop(running.record.id, None)
        if not running.deferred:
            self.limits.give_back(running.record)
            if self._resuming:  # only a deferred job coming back waits for a slot
                self._slot_freed.set()
        if outcome is not None:
            if type(outcome) is not Complete:
                self._expect_outcome(outcome)
            self._outcomes.append((running, outcome))
            self._outcomes_ready.set()
        self._wake.set()
        if not self.running:
            self._idle.set()

    def _expect_outcome(self, outcome: Outcome) -> None:
        """Note when a retried or sleeping job becomes due again."""
        if isinstance(outcome, Fail) and outcome.retry_at is not None:
            self._expect(outcome.retry_at)
        elif isinstance(outcome, Release) and outcome.to == "suspended" and outcome.run_at:
            self._expect(outcome.run_at)

    # -- reporting --------------------------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._outcomes_ready.wait()
            self._outcomes_ready = anyio.Event()
            await self._gather()
            await self._flush()

    async def _gather(self) -> None:
        """Let the runners take the jobs handed to them before writing, up to a batch.

        The first outcome wakes the flusher while quick jobs of the same claim are still
        queued; they finish in the runners' next turns, and one transaction then carries what
        would have taken several. Stops as soon as the queue stops shrinking (every runner
        busy with a slow job).
        """
        queued = len(self._jobs)
        while queued and len(self._outcomes) < self.batch_size:
            await anyio.lowlevel.checkpoint()
            left = len(self._jobs)
            if left >= queued:
                return
            queued = left

    async def _flush(self) -> None:
        store = self.scheduler.store
        while self._outcomes:
            batch, self._outcomes = self._outcomes, []
            self._in_flight = batch
            # While slots are free and no claim is under way, the same transaction claims
            # work for them: one trip to the store instead of two. Not with a chooser (limits
            # per type, domain or resource): the memory store would copy its table to undo
            # the write if the chooser failed; the claim loop claims those on its own.
            asked = (
                None
                if self._claiming or self._stopping or self.limits.constrained
                else self._claim_request()
            )
            with anyio.CancelScope(shield=True), self.scheduler.holding_transitions():
                try:
                    if asked is None:
                        applied = await store.finish([o for _, o in batch])
                    else:
                        self._claiming = True
                        applied, jobs = await store.finish_and_claim([o for _, o in batch], *asked)
                        self._start(jobs)
                finally:
                    self._in_flight = []
                    if asked is not None:
                        self._claiming = False
                    self._wake.set()  # a claim held back by the backlog may go ahead
                self._after_flush(batch, applied)
                if self.running and any(not isinstance(o, Complete) for _, o in batch):
                    # A failure or cancellation may have cascaded to jobs running here.
                    await self.check_requests()
            # A busy worker claims here more than in the claim loop: housekeep here too, or
            # due jobs, expired ttls and dead workers' leases would wait for an idle moment.
            if asked is not None and self._housekeeping_due() and await store.housekeep():
                self._wake.set()

    async def check_requests(self) -> None:
        """Renew every lease now, so cancel and pause requests reach running handlers at once.

        Jobs whose outcome is not written yet keep their lease too: a slow write must not let
        another worker reclaim, and run again, a job that has already finished here.
        """
        current = list(self.running.values())
        unwritten = [Beat(o.lease) for _, o in self._in_flight + self._outcomes]
        if not current and not unwritten:
            return
        status = await self.scheduler.store.heartbeat(
            [self._beat(r) for r in current] + unwritten, self.claim_ttl
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

    # -- stopping ---------------------------------------------------------------------------

    def _drain(self) -> None:
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
