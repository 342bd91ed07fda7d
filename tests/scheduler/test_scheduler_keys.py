"""Concurrency keys and fair share through the Scheduler: definitions, submissions, workers."""

from __future__ import annotations

import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import pytest

from wireframe import Domain, JobContext, JobState, Scheduler
from wireframe.scheduler.errors import ConfigError
from wireframe.testing import running

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from pg_support import fresh_store_url

KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def store_url(kind: str, tmp_path: Path) -> AbstractAsyncContextManager[str]:
    """The URL of a fresh store of `kind` (a PostgreSQL schema is dropped afterwards)."""
    return fresh_store_url(kind, tmp_path, "wfkeys")


def by_account(job: dict[str, Any]) -> str:
    return str(job["acct"])


# -- definitions and submissions ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_per_key": 2}, "max_per_key=2 needs a concurrency_key="),
        ({"weight": 2.0}, "weight=2.0 needs a concurrency_key="),
        ({"concurrency_key": "acct"}, "concurrency_key must be a callable payload -> str"),
        ({"concurrency_key": by_account, "max_per_key": 0}, "max_per_key must be an int >= 1"),
        ({"concurrency_key": by_account, "max_per_key": 1.5}, "max_per_key must be an int >= 1"),
        ({"concurrency_key": by_account, "max_per_key": True}, "max_per_key must be an int >= 1"),
        ({"concurrency_key": by_account, "weight": 0}, "weight must be > 0"),
        ({"concurrency_key": by_account, "weight": -1.0}, "weight must be > 0"),
        ({"concurrency_key": by_account, "weight": float("nan")}, "weight must be a finite"),
        ({"concurrency_key": by_account, "weight": "2"}, "weight must be a finite"),
    ],
)
def test_bad_key_settings_are_refused_where_they_are_defined(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=rf"^Domain\('acct'\): {message}"):
        Domain("acct", **options)
    domain = Domain("acct2")
    with pytest.raises(ConfigError, match=rf"^acct2::work: {message}"):

        @domain.job(**options)
        async def work(job: dict[str, Any], ctx: JobContext) -> None: ...


@pytest.mark.anyio
@pytest.mark.parametrize("returned", [None, 7, "", b"a"])
async def test_a_key_callable_that_returns_no_str_fails_the_submission(returned: object) -> None:
    domain = Domain("acct", concurrency_key=lambda job: returned)

    @domain.job
    async def work(job: dict[str, Any], ctx: JobContext) -> None: ...

    async with Scheduler("memory://", domains=[domain], worker=False) as s:
        for submit in (s.submit, lambda p, **kw: s.submit_many([p] * 20, **kw)):
            with pytest.raises(ConfigError, match="submit acct::work: the concurrency_key"):
                await submit({"acct": "a"}, type=work)
        assert await s.jobs() == []


@pytest.mark.anyio
async def test_the_key_is_computed_at_submission_and_scoped_by_where_it_is_declared() -> None:
    shared = Domain("acct", concurrency_key=by_account, max_per_key=3)
    own = Domain("other")

    @shared.job
    async def a(job: dict[str, Any], ctx: JobContext) -> None: ...

    @shared.job
    async def b(job: dict[str, Any], ctx: JobContext) -> None: ...

    @own.job(concurrency_key=by_account, weight=2)
    async def c(job: dict[str, Any], ctx: JobContext) -> None: ...

    async with Scheduler("memory://", domains=[shared, own], worker=False) as s:
        ids = [
            (await s.submit({"acct": "x"}, type=a)).id,
            (await s.submit({"acct": "x"}, type=b)).id,
            (await s.submit({"acct": "x"}, type=c)).id,
        ]
        many = await s.submit_many([{"acct": f"m{i}"} for i in range(20)], type=a)
        jobs = [await s.get(i) for i in ids]
        assert [(j.flow_key, j.key_cap) for j in jobs if j is not None] == [
            ("acct|x", 3),  # one key for the whole domain: a and b share its cap
            ("acct|x", 3),
            ("other::c|x", None),  # declared on the type: its own keys, no cap
        ]
        got = [await s.get(r.id) for r in many]
        assert [j.flow_key for j in got if j is not None] == [f"acct|m{i}" for i in range(20)]


# -- workers ----------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_small_tenant_finishes_while_a_big_backlog_is_still_draining(
    kind: str, tmp_path: Path
) -> None:
    tenants = Domain("tenants", concurrency_key=by_account)
    started: list[str] = []
    go = anyio.Event()
    four_running = anyio.Event()

    @tenants.job
    async def work(job: dict[str, Any], ctx: JobContext) -> None:
        started.append(job["acct"])
        if len(started) == 4:
            four_running.set()
        await go.wait()

    async with store_url(kind, tmp_path) as url:
        scheduler = Scheduler(url, domains=[tenants], max_concurrency=4, poll_interval=0.02)
        async with running(scheduler) as s:
            await s.submit_many([{"acct": "big"}] * 2000, type=work)
            await four_running.wait()  # the big tenant has the workers, its backlog waits
            small = await s.submit_many([{"acct": "small"}] * 10, type=work)
            go.set()
            with anyio.fail_after(60):
                for r in small:
                    await s.result(r.id)
            # Two active keys take turns: the small tenant waited for about one big job per
            # job of its own (and the four it found running), not for the backlog.
            last_small = len(started) - started[::-1].index("small")
            assert started[:last_small].count("big") <= 4 + len(small) + 4
            pending = await s.jobs(state=JobState.PENDING, limit=10_000)
            assert len(pending) > 1900


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_metrics_count_jobs_held_by_a_cap_without_a_label_per_key(
    kind: str, tmp_path: Path
) -> None:
    from wireframe import scheduler_metrics

    keys = Domain("keys", concurrency_key=by_account, max_per_key=2)
    plain = Domain("plain")
    go = anyio.Event()
    three = anyio.Event()
    started: list[str] = []

    @keys.job
    async def work(job: dict[str, Any], ctx: JobContext) -> None:
        started.append(job["acct"])
        if len(started) == 3:
            three.set()
        await go.wait()

    @plain.job
    async def other(job: dict[str, Any], ctx: JobContext) -> None: ...

    async with store_url(kind, tmp_path) as url:
        scheduler = Scheduler(url, domains=[keys, plain], max_concurrency=8, poll_interval=0.02)
        async with running(scheduler) as s:
            collect = scheduler_metrics(s)
            await s.submit_many([{"acct": "a"}] * 5 + [{"acct": "b"}], type=work)
            await three.wait()  # a at its cap of 2, b running its only job
            families = {f.name: f for f in await collect()}
            go.set()
    series = {"domain": "keys", "type": "keys::work"}
    waiting = families["wireframe_jobs_waiting_on_key_cap"]
    busiest = families["wireframe_key_running_max"]
    assert [(dict(x.labels), x.value) for x in waiting.samples] == [(series, 3.0)]
    assert [(dict(x.labels), x.value) for x in busiest.samples] == [(series, 2.0)]
    assert sorted(started) == ["a", "a", "b"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", KINDS)
async def test_a_rate_limited_domain_still_keeps_each_key_under_its_cap(
    kind: str, tmp_path: Path
) -> None:
    # A rate limit sends claims down their own path; the key's cap must hold there too, also
    # inside one claim that could take every job of the key at once.
    from wireframe import Rate

    tenants = Domain(
        "tenants", concurrency_key=by_account, max_per_key=2, rate=Rate(10_000, burst=10_000)
    )
    running_now: dict[str, int] = {}
    most: dict[str, int] = {}
    release = anyio.Event()
    two_running = anyio.Event()
    two_of_b = anyio.Event()

    @tenants.job
    async def work(job: dict[str, Any], ctx: JobContext) -> None:
        acct = job["acct"]
        running_now[acct] = running_now.get(acct, 0) + 1
        most[acct] = max(most.get(acct, 0), running_now[acct])
        if running_now.get("a", 0) == 2:
            two_running.set()
        if running_now.get("b", 0) == 2:
            two_of_b.set()
        await release.wait()
        running_now[acct] -= 1

    async with store_url(kind, tmp_path) as url:
        scheduler = Scheduler(url, domains=[tenants], max_concurrency=8, poll_interval=0.02)
        async with running(scheduler) as s:
            jobs = await s.submit_many([{"acct": "a"}] * 6 + [{"acct": "b"}] * 3, type=work)
            await two_running.wait()
            with anyio.fail_after(30):
                await two_of_b.wait()  # the other key goes ahead meanwhile
            release.set()
            with anyio.fail_after(60):
                for r in jobs:
                    await s.result(r.id)
    assert most == {"a": 2, "b": 2}
