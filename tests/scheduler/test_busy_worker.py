"""A worker that never runs out of work still wakes delayed jobs.

A busy worker claims new work with the write of its outcomes (`Store.finish_and_claim`) rather
than in its claim loop; its housekeeping (waking due jobs, expiring ttls, taking back dead
workers' leases) must not wait for an idle moment that never comes.
"""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest

from wireframe.scheduler import Domain, JobContext, JobState, Retry, Scheduler, Worker
from wireframe.store import FAR_FUTURE, NewJob, Submitted
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_a_delayed_job_runs_while_the_worker_is_saturated(url: str, tmp_path: Path) -> None:
    chain = Domain("chain")
    delayed_ran = anyio.Event()
    links = 0

    @chain.job
    async def link(job: dict, ctx: JobContext) -> None:
        nonlocal links
        links += 1
        if not delayed_ran.is_set():  # keep the queue from ever running dry
            await scheduler.submit({}, type="chain::link")

    @chain.job
    async def later(job: dict, ctx: JobContext) -> None:
        delayed_ran.set()

    store = "memory://" if url == "memory://" else str(tmp_path / "jobs.db")
    # poll_interval far beyond the test: the delayed submit's own due time must wake it.
    scheduler = Scheduler(store, domains=[chain], max_concurrency=1, poll_interval=60.0)
    async with running(scheduler) as s:
        await s.submit({}, type="chain::link")
        await s.submit({}, type="chain::later", delay=0.05)
        with anyio.fail_after(10):
            await delayed_ran.wait()
    assert links > 1


def saturated(scheduler_ref: list[Scheduler], stop: anyio.Event) -> Domain:
    """A domain whose `link` job resubmits itself until `stop`: the worker never runs dry."""
    chain = Domain("chain")

    @chain.job
    async def link(job: dict, ctx: JobContext) -> None:
        if not stop.is_set():
            await scheduler_ref[0].submit({}, type="chain::link")

    return chain


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_a_saturated_worker_wakes_its_own_retries_and_sleepers_on_time(
    url: str, tmp_path: Path
) -> None:
    # poll_interval is far longer than the test may take: only the due times the worker noted
    # for itself (a retry's backoff, a durable sleep, a delayed submit) can wake these jobs.
    stop = anyio.Event()
    ref: list[Scheduler] = []
    chain = saturated(ref, stop)
    tries = 0

    @chain.job(retry=Retry.fixed(attempts=2, delay=0.05))
    async def flaky(job: dict, ctx: JobContext) -> str:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise RuntimeError("first try fails")
        return "retried"

    @chain.job
    async def sleeper(job: dict, ctx: JobContext) -> str:
        await ctx.sleep("nap", 0.05)
        return "woke"

    @chain.job
    async def later(job: dict, ctx: JobContext) -> str:
        return "ran"

    store = "memory://" if url == "memory://" else str(tmp_path / "jobs.db")
    scheduler = Scheduler(store, domains=[chain], max_concurrency=1, poll_interval=60.0)
    ref.append(scheduler)
    async with running(scheduler) as s:
        await s.submit({}, type="chain::link")
        flaky_job = await s.submit({}, type="chain::flaky")
        sleeper_job = await s.submit({}, type="chain::sleeper")
        later_job = await s.submit({}, type="chain::later", delay=0.05)
        with anyio.fail_after(10):
            assert await s.result(flaky_job.id) == "retried"
            assert await s.result(sleeper_job.id) == "woke"
            assert await s.result(later_job.id) == "ran"
        stop.set()


async def test_a_saturated_worker_still_wakes_delayed_jobs_it_was_not_told_of() -> None:
    # A delayed job written to the store by someone else (no hint to this worker) waits for
    # the fallback housekeeping pass, every poll_interval.
    stop = anyio.Event()
    ref: list[Scheduler] = []
    chain = saturated(ref, stop)

    @chain.job
    async def later(job: dict, ctx: JobContext) -> str:
        return "ran"

    scheduler = Scheduler("memory://", domains=[chain], max_concurrency=1, poll_interval=0.2)
    ref.append(scheduler)
    async with running(scheduler) as s:
        await s.submit({}, type="chain::link")
        job = NewJob(type="chain::later", domain="chain", payload="{}", run_at=time.time() + 0.05)
        [written] = await s.store.submit([job])  # straight to the store: no hint
        assert isinstance(written, Submitted)
        with anyio.fail_after(10):
            assert await s.result(written.id) == "ran"
        stop.set()


class _Clock:
    """A clock the test moves by hand (`Worker(clock=...)`)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


def test_a_busy_worker_housekeeps_when_a_noted_time_comes_else_every_poll_interval() -> None:
    clock = _Clock()
    worker = Worker("memory://", [Domain("d")], poll_interval=1.0, clock=clock)
    producer = worker._producer

    def passes(until: float, step: float = 0.01) -> list[float]:
        """The times (from now) at which a claim every `step` seconds would housekeep."""
        start, seen = clock.now, []
        while clock.now - start < until - 1e-9:
            clock.now += step
            if producer._housekeeping_due():
                seen.append(round(clock.now - start, 2))
        return seen

    assert passes(0.01) == [0.01]  # never housekept yet
    assert passes(2.5) == [1.0, 2.0]  # nothing noted: the fallback pass only
    producer.expect(clock.now + 0.6)
    producer.expect(clock.now + 0.3)
    producer.expect(clock.now + 0.32)  # passes are HOUSEKEEP_EVERY (0.05 s) apart at least
    assert passes(1.0) == [0.3, 0.35, 0.6]
    worker.notify(clock.now + 0.2)  # an in-process delayed submit
    assert passes(0.5) == [0.2]
    producer.expect(FAR_FUTURE)  # a wait for an event, no time: nothing to note
    assert producer.hints == []


async def test_a_worker_with_too_few_free_slots_to_claim_does_not_spin_on_a_due_time() -> None:
    # 7 of 8 slots stay busy and the eighth job fails with a retry: the retry's due time passes
    # while one free slot is too few to claim for (a quarter of the slots). Waking at that time
    # again and again, with nothing to claim, would turn the claim loop into a busy loop.
    domain = Domain("d")
    release = anyio.Event()
    blocked = 0
    all_blocked = anyio.Event()

    @domain.job
    async def block(job: dict, ctx: JobContext) -> None:
        nonlocal blocked
        blocked += 1
        if blocked == 7:
            all_blocked.set()
        await release.wait()

    @domain.job(retry=Retry.fixed(attempts=2, delay=0.01))
    async def flaky(job: dict, ctx: JobContext) -> None:
        raise RuntimeError("fails")

    scheduler = Scheduler("memory://", domains=[domain], max_concurrency=8, poll_interval=60.0)
    async with running(scheduler) as s:
        worker = s.worker
        assert worker is not None
        sleeps = 0
        original = worker._producer._sleep_until_work

        async def counted(claimed: int) -> None:
            nonlocal sleeps
            sleeps += 1
            await original(claimed)

        worker._producer._sleep_until_work = counted  # type: ignore[method-assign]
        failed = (await s.submit({}, type="d::flaky")).id
        for _ in range(7):
            await s.submit({}, type="d::block")
        with anyio.fail_after(10):
            await all_blocked.wait()
            while True:  # the failure is written: the retry waits for its time
                record = await s.get(failed)
                assert record is not None
                if record.state is not JobState.RUNNING and record.attempt == 1:
                    break
                await anyio.sleep(0.01)
        before = sleeps
        await anyio.sleep(0.3)  # the retry is due after 0.01 s: watch the loop meanwhile
        assert sleeps - before < 20, f"the claim loop went round {sleeps - before} times"
        release.set()
