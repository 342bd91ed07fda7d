"""A ttl bounds only the wait before a job's first start; a lost worker spends no attempt.

The store runs on a clock of the test's (the scheduler computes ttls, retry and sleep times on
the real one): the test jumps it past a job's ttl while the job waits after it has started (in
a durable sleep, for a retry, for a dead worker's lease), and the job must still run to its end.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import attrs
import pytest

from wireframe import ConfigError, Domain, JobContext, JobState, Retry, Scheduler
from wireframe.store import ClaimRequest, MemoryStore, SqliteStore, Store
from wireframe.testing import running

pytestmark = pytest.mark.anyio

HOUR = 3600.0


@attrs.frozen
class Work:
    name: str


class Clock:
    """The store's clock: real time until the test jumps it forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def jump(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sqlite"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Store]:
    opened: Store = (
        MemoryStore(clock=clock)
        if request.param == "memory"
        else SqliteStore(tmp_path / "jobs.db", clock=clock)
    )
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def wait_state(s: Scheduler, job_id: int, state: JobState) -> None:
    with anyio.fail_after(10):
        while (job := await s.get(job_id)) is None or job.state is not state:
            await anyio.sleep(0.01)


def scheduler(store: Store, domain: Domain) -> Scheduler:
    return Scheduler(store, domains=[domain], poll_interval=0.02)


async def test_a_job_sleeping_past_its_ttl_wakes_and_completes(store: Store, clock: Clock) -> None:
    d = Domain("d")
    effects: list[str] = []

    @d.job
    async def napper(job: Work, ctx: JobContext) -> str:
        await ctx.step("before", effects.append, "before")
        if len(effects) == 1 and clock.offset == 0:
            clock.jump(HOUR)  # the store's time passes the ttl while the job starts its nap
        await ctx.sleep("nap", 0.1)  # the wake-up is checked against the real clock
        return "rested"

    async with running(scheduler(store, d)) as s:
        out = await s.submit(Work("a"), ttl=60)
        assert await s.result(out.id, timeout=10) == "rested"
    assert effects == ["before"]


async def test_a_job_retried_past_its_ttl_runs_again(store: Store, clock: Clock) -> None:
    d = Domain("d")
    runs: list[int] = []

    @d.job(retry=Retry.fixed(2, delay=HOUR))
    async def flaky(job: Work, ctx: JobContext) -> str:
        runs.append(ctx.job.attempt)
        if len(runs) == 1:
            raise RuntimeError("first attempt fails")
        return "second time lucky"

    async with running(scheduler(store, d)) as s:
        out = await s.submit(Work("a"), ttl=60)
        await wait_state(s, out.id, JobState.SCHEDULED)
        clock.jump(2 * HOUR)
        assert await s.result(out.id, timeout=10) == "second time lucky"
    assert runs == [1, 2]


async def claim_as_a_dead_worker(store: Store, job_id: int) -> None:
    """Lease the job to a worker that never renews the lease nor finishes: it died."""
    [job] = await store.claim(ClaimRequest("dead-worker", 1, lease_ttl=30, domains=("d",)))
    assert job.id == job_id


async def test_a_job_reclaimed_past_its_ttl_runs_again(store: Store, clock: Clock) -> None:
    d = Domain("d")

    @d.job(retry=Retry.fixed(2, delay=0))
    async def survivor(job: Work, ctx: JobContext) -> str:
        return f"done on attempt {ctx.job.attempt}"

    client = Scheduler(store, domains=[d], worker=False)
    out = await client.submit(Work("a"), ttl=60)
    await claim_as_a_dead_worker(store, out.id)
    clock.jump(HOUR)  # past the dead worker's lease and the ttl
    async with running(scheduler(store, d)) as s:
        assert await s.result(out.id, timeout=10) == "done on attempt 2"
        attempts = await store.attempts(out.id)
    assert [a.outcome for a in attempts] == ["lease_expired", "completed"]
    assert attempts[0].error is not None and "dead-worker" in attempts[0].error


async def test_a_lost_worker_spends_no_attempt_of_the_default_policy(
    store: Store, clock: Clock
) -> None:
    d = Domain("d")

    @d.job  # the default policy: one attempt
    async def once(job: Work, ctx: JobContext) -> int:
        return ctx.job.attempts_spent

    client = Scheduler(store, domains=[d], worker=False)
    out = await client.submit(Work("a"))
    await claim_as_a_dead_worker(store, out.id)
    clock.jump(HOUR)
    async with running(scheduler(store, d)) as s:
        assert await s.result(out.id, timeout=10) == 1
        job = await store.get(out.id)
    assert job is not None
    assert (job.state, job.attempt, job.reclaims, job.max_reclaims) == (
        JobState.COMPLETED,
        2,
        1,
        3,
    )


async def test_the_retry_policy_counts_only_real_failures(store: Store, clock: Clock) -> None:
    d = Domain("d")
    seen: list[tuple[int, int]] = []

    @d.job(retry=Retry.fixed(2, delay=0))
    async def shaky(job: Work, ctx: JobContext) -> str:
        seen.append((ctx.job.attempt, ctx.job.attempts_spent))
        if len(seen) == 1:
            raise RuntimeError("a real failure")
        return "ok"

    client = Scheduler(store, domains=[d], worker=False)
    out = await client.submit(Work("a"))
    await claim_as_a_dead_worker(store, out.id)
    clock.jump(HOUR)
    async with running(scheduler(store, d)) as s:
        # Attempt 2 fails (the first real failure of two allowed); attempt 3 runs and completes.
        assert await s.result(out.id, timeout=10) == "ok"
        outcomes = [a.outcome for a in await store.attempts(out.id)]
    assert seen == [(2, 1), (3, 2)]
    assert outcomes == ["lease_expired", "failed", "completed"]


async def test_max_reclaims_from_the_job_type_and_from_submit(store: Store, clock: Clock) -> None:
    d = Domain("d")

    @d.job(max_reclaims=0)
    async def fragile(job: Work, ctx: JobContext) -> None:
        return None

    client = Scheduler(store, domains=[d], worker=False)
    typed = await client.submit(Work("type default"))
    given = await client.submit(Work("given"), max_reclaims=5)
    records = [await store.get(typed.id), await store.get(given.id)]
    assert [r.max_reclaims for r in records if r is not None] == [0, 5]
    await claim_as_a_dead_worker(store, typed.id)
    clock.jump(HOUR)
    await store.housekeep()
    job = await store.get(typed.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.error == (
        "worker lost 1 time (last: lease of worker dead-worker expired); "
        "gave up after max_reclaims=0"
    )


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True, None])
def test_a_bad_max_reclaims_on_a_job_type_is_refused_by_name(bad: object) -> None:
    d = Domain("d")
    message = f"d::bad max_reclaims must be an int >= 0, got {bad!r}"
    with pytest.raises(ConfigError, match=re.escape(message)):

        @d.job(max_reclaims=bad)  # type: ignore[arg-type]
        async def bad(job: Work, ctx: JobContext) -> None: ...


@pytest.mark.parametrize("bad", [-1, 2.0, "3", False])
async def test_a_bad_max_reclaims_on_submit_is_refused_by_name(bad: object) -> None:
    d = Domain("d")

    @d.job
    async def fine(job: Work, ctx: JobContext) -> None: ...

    async with Scheduler("memory://", domains=[d], worker=False) as s:
        message = f"submit d::fine max_reclaims must be an int >= 0, got {bad!r}"
        with pytest.raises(ConfigError, match=re.escape(message)):
            await s.submit(Work("a"), max_reclaims=bad)
