"""Rate limits as users declare them: `Rate(count, per=, burst=)` with `rate=`, `rate_key=` and
`cost=` on domains and job types, checked at definition and submission, enforced for every
worker together, visible as a job's reason and in the metrics."""

from __future__ import annotations

from pathlib import Path

import anyio
import attrs
import pytest

from wireframe import ConfigError, Domain, JobContext, JobState, Rate, Scheduler, scheduler_metrics
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Call:
    n: int
    tenant: str = "a"
    weight: int = 1


# -- definition and submission --------------------------------------------------------------


def test_rate_defaults_and_validation() -> None:
    assert Rate(100) == Rate(100, per=1.0, burst=100)
    assert Rate(5, per=60, burst=1).burst == 1
    for bad, word in [
        (lambda: Rate(0), "count must be >= 1, got 0"),
        (lambda: Rate(-3), "count must be >= 1"),
        (lambda: Rate(2.5), "count must be an int"),  # type: ignore[arg-type]
        (lambda: Rate(True), "count must be an int"),
        (lambda: Rate(1, per=-1.0), "per must be > 0, got -1.0"),
        (lambda: Rate(1, per=0), "per must be > 0"),
        (lambda: Rate(1, per=float("nan")), "per must be a finite number"),
        (lambda: Rate(1, burst=0), "burst must be >= 1, got 0"),
    ]:
        with pytest.raises(ConfigError, match=word):
            bad()


def test_bad_domain_and_job_type_rates_are_refused_at_definition() -> None:
    with pytest.raises(ConfigError, match=r"Domain\('m'\) rate must be a Rate"):
        Domain("m", rate=100)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rate_key must be a callable"):
        Domain("m", rate=Rate(1), rate_key="tenant")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="rate_key needs a rate="):
        Domain("m", rate_key=lambda p: p.tenant)
    with pytest.raises(ConfigError, match="cost of 5 tokens exceeds the burst"):
        Domain("m", rate=Rate(10, burst=4), cost=5)
    with pytest.raises(ConfigError, match="cost must be >= 1"):
        Domain("m", rate=Rate(10), cost=0)
    d = Domain("m", rate=Rate(10, burst=4), rate_key=lambda p: p.tenant)

    async def h(job: Call, ctx: JobContext) -> None: ...

    with pytest.raises(ConfigError, match="m::a cost: a cost of 9 tokens exceeds the burst"):
        d.job(name="a", cost=9)(h)
    with pytest.raises(ConfigError, match="m::b rate_key must take exactly one argument"):
        d.job(name="b", rate_key=lambda p, q: "x")(h)
    with pytest.raises(ConfigError, match="both have a keyed rate"):
        d.job(name="c", rate=Rate(1), rate_key=lambda p: p.tenant)(h)
    plain = Domain("p")
    with pytest.raises(ConfigError, match="p::d: rate_key needs a rate= on the type"):
        plain.job(name="d", rate_key=lambda p: p.tenant)(h)
    with pytest.raises(ConfigError, match="p::e cost: a cost of 3 tokens exceeds the burst"):
        plain.job(name="e", rate=Rate(5, burst=2), cost=3)(h)


async def test_bad_rate_keys_and_costs_are_refused_at_submission() -> None:
    d = Domain("m", rate=Rate(10, burst=4), rate_key=lambda p: p.tenant or None)

    @d.job(cost=lambda p: p.weight if p.n else str(p.weight))
    async def call(job: Call, ctx: JobContext) -> None: ...

    async with Scheduler("memory://", domains=[d], worker=False) as s:
        with pytest.raises(ConfigError, match="the rate_key callable returned None"):
            await s.submit(Call(1, tenant=""))
        with pytest.raises(ConfigError, match="cost callable's value: a cost of 7 tokens"):
            await s.submit(Call(1, weight=7))
        with pytest.raises(ConfigError, match="cost callable's value must be an int"):
            await s.submit(Call(0, weight=2))
        # submit_many checks every payload, not only the first of its class.
        with pytest.raises(ConfigError, match="rate_key callable returned None"):
            await s.submit_many([Call(1), Call(2, tenant="")])
        with pytest.raises(ConfigError, match="a cost of 5 tokens"):
            await s.submit_many([Call(1), Call(2, weight=5)])
        assert await s.jobs() == []


# -- enforcement ----------------------------------------------------------------------------


def store_url(kind: str, tmp_path: Path) -> str:
    return "memory://" if kind == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"


STORES = pytest.mark.parametrize("kind", ["memory", "sqlite"])


async def start_times(s: Scheduler, ids: list[int]) -> list[float]:
    jobs = [await s.get(i) for i in ids]
    assert all(j is not None and j.state is JobState.COMPLETED for j in jobs)
    return sorted(j.started_at for j in jobs if j is not None and j.started_at is not None)


def most_in_a_window(times: list[float], window: float) -> int:
    """The most start times any window of `window` seconds holds."""
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


@STORES
async def test_starts_keep_to_the_rate_and_workers_wake_for_tokens(
    kind: str, tmp_path: Path
) -> None:
    # poll_interval 60 s: only the token's due time can wake the worker in time.
    d = Domain("media", rate=Rate(40, per=1.0, burst=4))
    done = anyio.Event()
    ran: list[int] = []
    n = 60

    @d.job
    async def call(job: Call, ctx: JobContext) -> None:
        ran.append(job.n)
        if len(ran) == n:
            done.set()

    s = Scheduler(store_url(kind, tmp_path), domains=[d], max_concurrency=8, poll_interval=60)
    async with running(s):
        ids = [r.id for r in await s.submit_many([Call(i) for i in range(n)])]
        with anyio.fail_after(30):  # a hang guard: 60 jobs take about 1.4 s
            await done.wait()
        times = await start_times(s, ids)
    # Upper bounds strictly (GCRA: count * window / per + burst), lower ones loosely.
    assert most_in_a_window(times, 0.5) <= 40 * 0.5 + 4
    assert most_in_a_window(times, 1.0) <= 40 + 4
    achieved = (n - 4) / (times[-1] - times[0])
    assert achieved <= 40 * 1.1
    assert achieved >= 40 * 0.3


@STORES
async def test_each_key_has_its_own_bucket(kind: str, tmp_path: Path) -> None:
    d = Domain("api", rate=Rate(1, per=30.0, burst=1), rate_key=lambda p: p.tenant)
    started: list[str] = []

    @d.job
    async def call(job: Call, ctx: JobContext) -> None:
        started.append(job.tenant)

    s = Scheduler(store_url(kind, tmp_path), domains=[d], max_concurrency=4)
    async with running(s):
        await s.submit_many([Call(i, tenant="busy") for i in range(50)])
        quiet = await s.submit(Call(0, tenant="quiet"))
        with anyio.fail_after(30):
            await s.result(quiet)
        assert started.count("busy") == 1  # one token per 30 s: the rest wait...
        held = await s.jobs(state="pending", limit=1)
        assert held[0].reason is not None
        assert held[0].reason.startswith(
            "rate limited by api (key 'busy'): 1 per 30 s, next token in "
        )


@STORES
async def test_a_job_type_limit_and_its_cost(kind: str, tmp_path: Path) -> None:
    d = Domain("media")
    started: list[int] = []

    @d.job(rate=Rate(1, per=60.0, burst=3), cost=lambda p: p.weight)
    async def heavy(job: Call, ctx: JobContext) -> None:
        started.append(job.n)

    @d.job
    async def light(job: Call, ctx: JobContext) -> None: ...

    s = Scheduler(store_url(kind, tmp_path), domains=[d], max_concurrency=4)
    async with running(s):
        await s.submit(Call(1, weight=2), type=heavy)
        blocked = await s.submit(Call(2, weight=2), type=heavy)
        free = await s.submit(Call(3), type=light)
        with anyio.fail_after(30):
            await s.result(free)  # the other type is not held up
        record = await s.get(blocked)
        while record is not None and record.reason is None:  # the claim may still be writing
            await anyio.sleep(0.01)
            record = await s.get(blocked)
        assert started == [1]
        assert record is not None and record.state is JobState.PENDING
        assert record.reason is not None
        assert record.reason.startswith("rate limited by media::heavy: 1/min, next token in ")


async def test_metrics_show_tokens_and_held_jobs_per_limit_not_per_key() -> None:
    d = Domain("api", rate=Rate(2, per=60.0, burst=2), rate_key=lambda p: p.tenant)
    two = anyio.Event()
    started: list[int] = []

    @d.job
    async def call(job: Call, ctx: JobContext) -> None:
        started.append(job.n)
        if len(started) == 3:
            two.set()

    s = Scheduler("memory://", domains=[d], max_concurrency=4)
    async with running(s):
        await s.submit_many([Call(0, "t0"), Call(1, "t0"), Call(2, "t0"), Call(3, "t1")])
        with anyio.fail_after(30):
            await two.wait()
        await anyio.sleep(0)
        families = {f.name: f for f in await scheduler_metrics(s)()}

    def values(name: str) -> dict[str, float]:
        return {sample.labels["limit"]: sample.value for sample in families[name].samples}

    assert values("wireframe_rate_limit_tokens") == {"api": pytest.approx(0.0, abs=0.1)}
    assert values("wireframe_rate_limit_empty_buckets") == {"api": 1.0}  # tenant t0
    held = values("wireframe_rate_limited_jobs")
    assert set(held) == {"api"} and held["api"] >= 1
