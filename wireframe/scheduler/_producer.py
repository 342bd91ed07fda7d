"""The producer of a worker: claims work for its free slots, wakes when work may be there,
housekeeps when a due time comes, and preempts low-priority jobs for higher ones."""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable

import anyio

from wireframe.scheduler._executor import Executor
from wireframe.scheduler._running import Interrupt
from wireframe.scheduler.clock import Clock
from wireframe.store import (
    FAR_FUTURE,
    Chooser,
    ClaimRequest,
    Fail,
    JobRecord,
    Outcome,
    Release,
    Store,
)
from wireframe.store.rates import Claimed, RateLimit

log = logging.getLogger("wireframe.scheduler")

HOUSEKEEP_EVERY = 0.05
"""The least time between a busy worker's housekeeping passes (waking due jobs, expiring ttls,
reclaiming leases) when a due time it knows of has come."""

Asked = tuple[ClaimRequest, Chooser | None]


class Producer:
    """Claims jobs for the executor's free slots until `stop()`.

    Contract: never two claims at once (its own loop, or a claim lent to the completer's write
    with `lend`/`written`); a claim is never cut short by `stop()` (a job leased is a job
    started or handed back), only by cancellation; `notify` wakes it at once, `expect` makes
    it housekeep when a due time comes even while busy. `backlog()` counts outcomes not yet
    written: they hold slots beyond max_concurrency, and while there are any (and no chooser
    is needed) the completer claims with its write instead.
    """

    def __init__(
        self,
        store: Store,
        executor: Executor,
        *,
        worker_id: str,
        claim_ttl: float,
        batch_size: int,
        domains: tuple[str, ...],
        tags: tuple[str, ...],
        poll_interval: float,
        clock: Clock,
        backlog: Callable[[], int],
        rates: tuple[RateLimit, ...] = (),
    ) -> None:
        self.store = store
        self.executor = executor
        self.limits = executor.limits
        self.worker_id = worker_id
        self.claim_ttl = claim_ttl
        self.batch_size = batch_size
        self.domains = domains
        self.tags = tags
        self.poll_interval = poll_interval
        self.clock = clock
        self._backlog = backlog
        self.rates = rates
        self._token_due: float | None = None  # when a job a rate limit held gets its token
        self._wake = anyio.Event()
        self._stopping = False
        self._claiming = False  # a claim (alone, or with a write) is under way
        self._lent_at = 0.0
        self._housekept = -math.inf
        self._due: float | None = None  # the store's earliest due time, as last asked
        self.hints: list[float] = []  # a heap of due times this process made

    # -- signals in -------------------------------------------------------------------------

    def notify(self, due: float | None = None) -> None:
        """Wake the claim loop now (an in-process submit); `due`: a delayed job's time."""
        if due is not None:
            self.expect(due)
        self._wake.set()

    def expect(self, due: float) -> None:
        """Note that a job becomes due at `due` (Unix time): housekeep then, even if busy."""
        if due < FAR_FUTURE:
            heapq.heappush(self.hints, due)

    def expect_outcome(self, outcome: Outcome) -> None:
        """Note when a retried or sleeping job becomes due again."""
        if isinstance(outcome, Fail) and outcome.retry_at is not None:
            self.expect(outcome.retry_at)
        elif isinstance(outcome, Release) and outcome.to == "suspended" and outcome.run_at:
            self.expect(outcome.run_at)

    def stop(self) -> None:
        """Claim nothing more: the loop returns after the claim under way, if any."""
        self._stopping = True
        self._wake.set()

    # -- claims lent to the completer -------------------------------------------------------

    def lend(self) -> Asked | None:
        """A claim for the completer to make with its write, if one is due and none is under
        way; not when a chooser is needed (the memory store would copy its table to undo the
        write if the chooser failed): the claim loop makes those."""
        if self._claiming or self._stopping or self.limits.constrained:
            return None
        asked = self._request()
        if asked is not None:
            self._claiming = True
            self._lent_at = self.clock.monotonic()
        return asked

    def written(self, asked: Asked | None, jobs: list[JobRecord]) -> None:
        """The completer's write ended, with the jobs its claim leased."""
        if asked is not None:
            self._claiming = False
            self._note_held(jobs)
            self.executor.start(jobs, self._lent_at + self.claim_ttl)
        self._wake.set()  # a claim held back by the backlog may go ahead

    async def housekeep_if_due(self) -> None:
        """Housekeep if due (a busy worker claims through its writes more than its loop)."""
        if self._housekeeping_due() and await self.store.housekeep():
            self._wake.set()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Claim until `stop()`."""
        while not self._stopping:
            self._wake = anyio.Event()
            if self._claiming or self._flusher_claims():
                # The completer claims with its write, one trip for both; it wakes us when done.
                await self._wake.wait()
                continue
            claimed = -1  # no claim made
            asked = self._request()
            if asked is not None:
                claimed = await self._claim(*asked)
                # Housekeeping after the claim, so new work starts first; it may free more.
                if self._housekeeping_due() and await self.store.housekeep():
                    continue
                if claimed == asked[0].limit:
                    continue
            elif self.limits.free == 0:
                await self._maybe_preempt()
            await self._sleep_until_work(claimed)

    async def _claim(self, request: ClaimRequest, chooser: Chooser | None) -> int:
        self._claiming = True
        sent = self.clock.monotonic()
        try:
            jobs = await self.store.claim(request, chooser)
        finally:
            self._claiming = False
        self._note_held(jobs)
        self.executor.start(jobs, sent + self.claim_ttl)
        return len(jobs)

    def _note_held(self, jobs: list[JobRecord]) -> None:
        """Remember when a job the claim's rate limits held may be taken (claim again then)."""
        retry_in = jobs.retry_in if isinstance(jobs, Claimed) else None
        self._token_due = None if retry_in is None else self.clock.monotonic() + retry_in

    def _flusher_claims(self) -> bool:
        """Whether outcomes are queued or being written by a completer that claims with them."""
        return bool(self._backlog()) and not (self._stopping or self.limits.constrained)

    def _request(self) -> Asked | None:
        """What to claim now, if enough slots are free for a claim to be worth its trip."""
        limits = self.limits
        busy = limits.running
        threshold = 1 if busy == 0 else max(1, min(self.batch_size, limits.max_concurrency) // 4)
        # Deferred jobs coming back go first. Outcomes not yet stored count against the
        # slots beyond max_concurrency: a crash can make at most twice max_concurrency
        # jobs run again (those running and those whose completion was not yet written).
        backlog = self._backlog()
        free = limits.free - self.executor.resuming - max(0, backlog - limits.max_concurrency)
        if free < threshold:
            return None
        want = min(free, self.batch_size)
        request = ClaimRequest(
            self.worker_id,
            want,
            self.claim_ttl,
            self.domains,
            self.tags,
            exclude_types=limits.full_types(),
            exclude_domains=limits.full_domains(),
            scan=want * 4 if limits.constrained else want,
            housekeep=False,
            rates=self.rates,
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
        now = self.clock.monotonic()
        if now - self._housekept < HOUSEKEEP_EVERY:
            return False
        wall = self.clock.time()
        hints = self.hints
        due = (self._due is not None and wall >= self._due) or bool(hints and hints[0] <= wall)
        if not due and now - self._housekept < self.poll_interval:
            return False
        while hints and hints[0] <= wall:
            heapq.heappop(hints)
        self._housekept, self._due = now, None
        return True

    def _wait_timeout(self, claimed: int) -> float:
        """How long to sleep: `poll_interval`, or until a due time this worker knows of."""
        timeout = self.poll_interval
        if claimed < 0:  # no claim was made: nothing to housekeep for
            return timeout
        if self._token_due is not None:  # a rate limit held a job: claim when its token is due
            timeout = min(timeout, max(0.0, self._token_due - self.clock.monotonic()))
        due = min(
            math.inf if self._due is None else self._due,
            self.hints[0] if self.hints else math.inf,
        )
        if due < math.inf:  # then, or once housekeeping may run again
            gap = self._housekept + HOUSEKEEP_EVERY - self.clock.monotonic()
            timeout = max(0.0, min(timeout, max(due - self.clock.time(), gap)))
        return timeout

    async def _sleep_until_work(self, claimed: int) -> None:
        if claimed == 0 and self.limits.free > 0:  # a claim found nothing: when is work due?
            self._due = await self.store.next_due_at()
        timeout = self._wait_timeout(claimed)
        if self._wake.is_set():
            return
        async with anyio.create_task_group() as tg:

            async def local() -> None:
                await self._wake.wait()
                tg.cancel_scope.cancel()

            async def remote() -> None:
                await self.store.wait_for_work(timeout)
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
            for r in self.executor.running.values()
            if r.job_type is not None and r.job_type.preemptible and r.stop_reason is None
        ]
        if not victims:
            return
        victim = min(victims, key=lambda r: (r.record.base_priority, -r.record.id))
        top = await self.store.top_pending_priority(self.domains, self.tags)
        if top is not None and top > victim.record.base_priority:
            log.info(
                "preempting job %s (priority %s) for a pending job of priority %s",
                victim.record.id,
                victim.record.base_priority,
                top,
            )
            victim.interrupt(Interrupt.PREEMPTED)
