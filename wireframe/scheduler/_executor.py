"""The runners of a worker: a fixed pool taking claimed jobs from a hand-off queue and running
their handlers under the worker's limits; a deferred job gives its slot back while it polls."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio

from wireframe.durable import LeaseLost, Suspend
from wireframe.scheduler._middleware import Chain, expected_on_cancel, outcome_of
from wireframe.scheduler._numbers import seconds
from wireframe.scheduler._outcome import conclude, failure
from wireframe.scheduler._parked import complete_in_transaction, discard
from wireframe.scheduler._running import Interrupt, Running
from wireframe.scheduler._transaction import Committed
from wireframe.scheduler.clock import Clock
from wireframe.scheduler.codec import decode_payload
from wireframe.scheduler.context import JobContext
from wireframe.scheduler.domain import HandlerFn, JobType
from wireframe.scheduler.events import EventBus, JobStarted
from wireframe.scheduler.handoff import Handoff
from wireframe.scheduler.limits import Limits
from wireframe.service.log import current_job
from wireframe.store import Complete, JobRecord, LeaseStatus, Outcome, Release

log = logging.getLogger("wireframe.scheduler")

STREAK = 64
"""Jobs a runner takes from its queue between yields to the event loop. Jobs that finish without
awaiting anything (the completer writes the outcomes of one streak at a time) run this many at a
stretch: a longer stretch means fewer, bigger writes; 64 no-op jobs take well under 1 ms."""

Report = Callable[[Running, Outcome | Committed | None], None]
"""Told once per job when its runner is done with it (None: the outcome is dropped; Committed:
the runner has written it already)."""


class Executor:
    """Runs claimed jobs on `limits.max_concurrency` runners (more while jobs are deferred).

    Contract: every job given to `start` is reported exactly once through `report` when its
    runner is done with it, unless the runners are cancelled first: such a job stays in
    `running` for the worker to hand back. A handler never starts on a lease that may have run
    out: one that has little time left is renewed first (`renew`), and dropped if it is lost.
    """

    def __init__(
        self,
        limits: Limits,
        events: EventBus,
        types: dict[str, JobType[Any, Any]],
        *,
        worker_id: str,
        clock: Clock,
        lease_margin: float,
        context: Callable[[Running], JobContext],
        report: Report,
        freed: Callable[[], None],
        renew: Callable[[Running], Awaitable[bool]],
        chain: Chain | None = None,
    ) -> None:
        self.limits = limits
        self.events = events
        self.types = types
        self.worker_id = worker_id
        self.clock = clock
        self.lease_margin = lease_margin
        self._context = context
        self._report = report
        self._freed = freed
        """Told when a deferral frees a slot (a job's end is told through `report`)."""
        self._renew = renew
        self._chain = chain
        """The middleware with attempt hooks (None: none; the handler is called directly)."""
        self.running: dict[int, Running] = {}
        """Every job this worker holds and has not reported: queued, running or deferred."""
        self.jobs: Handoff[Running] = Handoff()
        self.runners = 0
        self.deferred = 0
        self.resuming = 0
        """Deferred jobs whose condition came true, waiting for a slot."""
        self._idle = anyio.Event()
        self._slot_freed = anyio.Event()
        self._add_runner: Callable[[], None] = lambda: None
        self._stopping = False
        """A stop began: jobs that arrive now (a claim that was under way) are not started."""

    # -- the pool ---------------------------------------------------------------------------

    async def serve(self) -> None:
        """Run the runners until `close()` and the queue is empty."""
        async with anyio.create_task_group() as runners:

            def add_runner() -> None:
                runners.start_soon(self._runner)

            self._add_runner = add_runner
            for _ in range(self.limits.max_concurrency):
                self._add_runner()

    def close(self) -> None:
        """No more jobs: runners finish what is queued, then return."""
        self.jobs.close()

    def start(self, jobs: Sequence[JobRecord], lease_deadline: float) -> None:
        """Take claimed jobs (their leases hold until the monotonic `lease_deadline`).

        Once a stop began, jobs from a claim that was under way are held, not started: a runner
        hands them back, or, once the queue is closed, the worker's final hand-back does.
        """
        started = self.clock.time()
        for job in jobs:
            running = Running(job, self.types.get(job.type), started, lease_deadline)
            self.running[job.id] = running
            self.limits.take(job)
            if self._stopping:
                running.stop_reason = Interrupt.SHUTDOWN
            if not self.jobs.closed:
                self.jobs.put(running)

    def done(self, running: Running, outcome: Outcome | Committed | None) -> None:
        """A runner is done with `running`: free its slot and report its outcome."""
        self.running.pop(running.record.id, None)
        if not running.deferred:
            self.limits.give_back(running.record)
            if self.resuming:  # only a deferred job coming back waits for a slot
                self._slot_freed.set()
        self._report(running, outcome)
        if not self.running:
            self._idle.set()

    # -- stopping ---------------------------------------------------------------------------

    def interrupt(self, job_id: int, reason: Interrupt, grace: float = 0.0) -> bool:
        """Ask one job's handler to stop; False if this worker does not hold the job."""
        running = self.running.get(job_id)
        if running is None:
            return False
        running.interrupt(reason, grace)
        return True

    def stop_unstarted(self) -> None:
        """Jobs queued but not started are handed back as soon as a runner takes them; deferred
        jobs, which hold no slot and only poll, are interrupted at once. So are jobs that arrive
        from now on (`start`)."""
        self._stopping = True
        for running in self.running.values():
            if running.scope is None and not running.deferred:
                running.stop_reason = Interrupt.SHUTDOWN
            elif running.deferred:
                running.interrupt(Interrupt.SHUTDOWN)

    def interrupt_all(self, reason: Interrupt) -> None:
        """Ask every handler to stop now."""
        for running in list(self.running.values()):
            running.interrupt(reason)

    async def wait_idle(self) -> None:
        """Return once no job is held (bound it with a cancel scope)."""
        while self.running:
            self._idle = anyio.Event()
            await self._idle.wait()

    # -- a runner ---------------------------------------------------------------------------

    async def _runner(self) -> None:
        self.runners += 1
        try:
            await self._run_jobs()
        finally:
            self.runners -= 1

    async def _next(self, streak: int) -> tuple[Running | None, int]:
        """The next job (None once the queue is closed and empty) and the streak count.

        Queued jobs are taken without a trip through the event loop, with a yield every
        STREAK jobs so that the completer and the producer keep up.
        """
        try:
            running = self.jobs.get_nowait()
        except anyio.WouldBlock:
            try:
                return await self.jobs.get(), 0  # the queue ran dry: a new streak begins
            except anyio.EndOfStream:
                return None, 0
        except anyio.EndOfStream:
            return None, 0
        streak += 1
        if streak % STREAK == 0:
            await anyio.lowlevel.checkpoint()
        return running, streak

    async def _run_jobs(self) -> None:
        """Take jobs and run them one at a time until the hand-off closes."""
        streak = 0
        while True:
            # One cancel scope serves job after job (entering a scope costs more than a no-op
            # job); a job that is interrupted or times out spends it, and the next gets a new one.
            running: Running | None = None
            with anyio.CancelScope() as scope:
                while True:
                    if self.runners > self.limits.max_concurrency + self.deferred:
                        return  # an extra runner started for a deferred job that has resumed
                    running, streak = await self._next(streak)
                    if running is None:
                        return
                    token = current_job.set(running.record.id)
                    try:
                        outcome = await self._one(running, scope)
                    finally:
                        current_job.reset(token)
                    self.done(running, outcome)
                    running = None
                    if scope.cancel_called:
                        break  # cancelled, but the handler swallowed it: this scope is spent
            if running is not None:  # its handler was cancelled out of the scope
                running.scope = None
                token = current_job.set(running.record.id)
                outcome = conclude(running, cancelled=scope.cancelled_caught)
                current_job.reset(token)
                self.done(running, outcome)

    async def _one(self, running: Running, scope: anyio.CancelScope) -> Outcome | Committed | None:
        """Run one job under the runner's scope; its outcome (None: dropped)."""
        if (
            running.lease_deadline - self.clock.monotonic() < self.lease_margin
            and running.stop_reason is not Interrupt.SHUTDOWN
            and not await self._renew(running)
        ):
            log.warning(
                "job %s: its lease ran out before the handler started; not running it here",
                running.record.id,
            )
            return None
        outcome = self._before(running)
        if outcome is None:
            return await self._call(running, scope)
        return None if isinstance(outcome, _Drop) else outcome

    def _before(self, running: Running) -> Outcome | _Drop | None:
        """The outcome of a job that is not to run its handler, or None to run it."""
        record = running.record
        job_type = running.job_type
        if running.stop_reason is Interrupt.SHUTDOWN:
            return Release(record.lease, "pending", "worker shut down before the job started")
        if running.stop_reason is Interrupt.LEASE_LOST:
            return _DROP
        if job_type is None:
            missing = (
                f"no handler for job type {record.type!r} in worker {self.worker_id} "
                f"(known types: {', '.join(sorted(self.types)) or 'none'})"
            )
            return failure(running, missing, None, permanent=True)
        if self.events.subscriber_count:
            self.events.publish(
                JobStarted(
                    job_id=record.id,
                    job_type=record.type,
                    attempt=record.attempt,
                    worker_id=self.worker_id,
                    queued_for=max(0.0, self.clock.time() - record.ready_at),
                )
            )
        if _handler(job_type, record.phase) is None:
            return Complete(record.lease, record.result)
        return None

    async def _call(self, running: Running, scope: anyio.CancelScope) -> Outcome | Committed | None:
        """Run the handler under the runner's `scope`; a cancellation that ends it leaves by
        the scope, and the runner concludes the job (see `_run_jobs`). A transaction the
        handler left to commit with its completion (`ctx.transaction()`) ends here."""
        try:
            outcome = await self._invoke(running, scope)
        except BaseException:
            await discard(running)
            raise
        if running.txn is None:
            return outcome
        return await complete_in_transaction(running, outcome)

    async def _invoke(self, running: Running, scope: anyio.CancelScope) -> Outcome | None:
        """The handler's outcome."""
        record = running.record
        job_type = running.job_type
        assert job_type is not None
        handler = _handler(job_type, record.phase)
        assert handler is not None
        running.scope = scope
        if job_type.timeout is not None:
            scope.deadline = anyio.current_time() + job_type.timeout
        if running.stop_reason is not None:
            scope.deadline = anyio.current_time()
        if self._chain is not None:
            return await self._call_hooked(running, scope, handler, self._chain)
        try:
            payload = decode_payload(record.payload, job_type.payload_type)
            result = await handler(payload, self._context(running))
        except Exception as exc:
            running.clear_deadline(scope)
            return conclude(running, error=exc)
        except Suspend as exc:
            running.clear_deadline(scope)
            return conclude(running, suspended=exc)
        except LeaseLost as exc:
            running.clear_deadline(scope)
            running.stop_reason = _refused(exc)  # the store's word is final
            return conclude(running)
        running.clear_deadline(scope)
        return conclude(running, result=result)

    async def _call_hooked(
        self, running: Running, scope: anyio.CancelScope, handler: HandlerFn, chain: Chain
    ) -> Outcome | None:
        """`_call` inside the attempt hooks of the middleware: `before_attempt` (one that
        raises fails the attempt as the handler would), then `on_error` and `after_attempt`
        with the outcome; a cancellation runs them too (shielded), with the outcome expected."""
        record = running.record
        assert running.job_type is not None
        ctx = self._context(running)
        hooks = chain.attempt(ctx)
        try:
            await hooks.enter()
            payload = decode_payload(record.payload, running.job_type.payload_type)
            result = await handler(payload, ctx)
        except Exception as exc:
            running.clear_deadline(scope)
            outcome = conclude(running, error=exc)
            await hooks.exit(outcome_of(outcome, exc))
            return outcome
        except Suspend as exc:
            running.clear_deadline(scope)
            outcome = conclude(running, suspended=exc)
        except LeaseLost as exc:
            running.clear_deadline(scope)
            running.stop_reason = _refused(exc)
            outcome = conclude(running)
        except BaseException:  # cancelled: the runner concludes it (see `_run_jobs`)
            await hooks.exit_shielded(expected_on_cancel(running, scope))
            raise
        else:
            running.clear_deadline(scope)
            outcome = conclude(running, result=result)
        await hooks.exit(outcome_of(outcome))
        return outcome

    # -- deferral ---------------------------------------------------------------------------

    async def defer(
        self,
        job_id: int,
        condition: Callable[[], Any],
        poll_interval: float,
        deadline: float | None = None,
    ) -> bool:
        """Poll `condition` every `poll_interval` seconds without holding a concurrency slot,
        until it is true (True) or the Unix time `deadline` passes (False); then take a slot
        back and return."""
        poll = seconds(poll_interval, "defer_until: poll_interval")
        running = self.running[job_id]
        if await _truth(condition):
            return True
        if deadline is not None and time.time() >= deadline:
            return False
        self._give_slot(running)
        try:
            met = await _poll(condition, poll, deadline)
            await self._wait_slot(running)
        except BaseException:
            self.deferred -= 1  # cancelled while deferred: it holds no slot to give back
            raise
        self.limits.take(running.record)
        self.deferred -= 1
        running.deferred = False
        return met

    def _give_slot(self, running: Running) -> None:
        running.deferred = True
        self.deferred += 1
        self.limits.give_back(running.record)
        if self.runners < self.limits.max_concurrency + self.deferred:
            self._add_runner()  # this runner waits here: another one runs the freed slot
        self._slot_freed.set()
        self._freed()

    async def _wait_slot(self, running: Running) -> None:
        self.resuming += 1
        try:
            while not self.limits.can_take(running.record):
                self._slot_freed = anyio.Event()
                await self._slot_freed.wait()
        finally:
            self.resuming -= 1


class _Drop:
    """`_before` found the job is not ours any more: drop it without an outcome."""


_DROP = _Drop()


def _handler(job_type: JobType[Any, Any], phase: str) -> HandlerFn | None:
    return job_type.finalize_fn if phase == "finalize" else job_type.execute


def _refused(exc: LeaseLost) -> Interrupt:
    """Why a fenced durable write was refused: a request to stop (a cancel, or a child that
    failed with fail_fast) ends the job now, as a cancellation does; a lost lease drops it."""
    if exc.status is LeaseStatus.CANCEL_REQUESTED:
        return Interrupt.CANCELLED
    return Interrupt.LEASE_LOST


async def _poll(condition: Callable[[], Any], poll: float, deadline: float | None) -> bool:
    """Check `condition` every `poll` seconds: True once it holds, False once the Unix time
    `deadline` (if any) has passed, after a last check at the deadline."""
    while True:
        wait = poll if deadline is None else min(poll, deadline - time.time())
        if wait <= 0:
            return False
        await anyio.sleep(wait)
        if await _truth(condition):
            return True


async def _truth(condition: Callable[[], Any]) -> bool:
    value = condition()
    if inspect.isawaitable(value):
        value = await value
    return bool(value)
