"""Submit options debounce= and throttle=, and pausing a domain or job type, on a Scheduler."""

from __future__ import annotations

import math
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import attrs
import pytest

from wireframe.scheduler import (
    ConfigError,
    Domain,
    Duplicate,
    Every,
    JobContext,
    JobState,
    PausedFlow,
    Scheduler,
    Submitted,
)
from wireframe.store import MemoryStore, PostgresStore, SqliteStore, Store
from wireframe.testing import running

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from pg_support import drop_schema, new_schema_name, require_pg

pytestmark = pytest.mark.anyio


class Clock:
    """A store clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@attrs.frozen
class Save:
    doc: str
    text: str


def make_store(kind: str, tmp_path: Path, clock: Callable[[], float]) -> Store:
    if kind == "memory":
        return MemoryStore(clock=clock)
    if kind == "postgresql":
        return PostgresStore(require_pg(), schema=(tmp_path / "schema").read_text(), clock=clock)
    return SqliteStore(tmp_path / "jobs.db", clock=clock)


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> Iterator[str]:
    """memory and SQLite on asyncio and trio; PostgreSQL (a schema of its own) on asyncio."""
    kind = str(request.param)
    if kind != "postgresql":
        yield kind
        return
    if anyio_backend != "asyncio":
        pytest.skip("the PostgreSQL store is tested under asyncio")
    name = new_schema_name("wfflow")
    (tmp_path / "schema").write_text(name)
    try:
        yield kind
    finally:
        drop_schema(name)


def docs_domain(seen: list[str]) -> Domain:
    docs = Domain("docs")

    @docs.job(key=lambda s: s.doc)
    async def save(job: Save, ctx: JobContext) -> str:
        seen.append(job.text)
        return job.text

    return docs


async def test_debounce_runs_once_with_the_last_payload(store_kind: str, tmp_path: Path) -> None:
    clock = Clock()
    seen: list[str] = []
    store = make_store(store_kind, tmp_path, clock)
    scheduler = Scheduler(store, domains=[docs_domain(seen)], poll_interval=0.02)
    async with running(scheduler) as s:
        outs = [await s.submit(Save("a", f"v{n}"), debounce=60) for n in range(3)]
        first = outs[0]
        assert isinstance(first, Submitted) and not first.replaced
        assert outs[1:] == [Submitted(first.id, replaced=True)] * 2
        other = await s.submit(Save("b", "other"), debounce=60)
        assert other.id != first.id
        record = await s.get(first.id)
        assert record is not None and record.state is JobState.SCHEDULED
        assert record.payload == '{"doc":"a","text":"v2"}'
        clock.now += 61
        assert await s.result(first.id, timeout=10) == "v2"
        assert await s.result(other.id, timeout=10) == "other"
    assert sorted(seen) == ["other", "v2"]


async def test_submit_many_debounce_keeps_the_last_of_each_key(
    store_kind: str, tmp_path: Path
) -> None:
    seen: list[str] = []
    store = make_store(store_kind, tmp_path, Clock())
    async with Scheduler(store, domains=[docs_domain(seen)], worker=False) as s:
        outs = await s.submit_many(
            [Save("a", "1"), Save("b", "1"), Save("a", "2"), Save("a", "3")], debounce=5
        )
        assert [o.id for o in outs] == [outs[0].id, outs[1].id, outs[0].id, outs[0].id]
        assert [getattr(o, "replaced", None) for o in outs] == [False, False, True, True]
        jobs = await s.jobs()
        assert [(j.id, j.payload) for j in jobs] == [
            (outs[0].id, '{"doc":"a","text":"3"}'),
            (outs[1].id, '{"doc":"b","text":"1"}'),
        ]


async def test_throttle_refuses_within_the_period(store_kind: str, tmp_path: Path) -> None:
    clock = Clock()
    store = make_store(store_kind, tmp_path, clock)
    async with Scheduler(store, domains=[docs_domain([])], worker=False) as s:
        first = await s.submit(Save("a", "1"), throttle=60)
        assert isinstance(first, Submitted)
        await s.cancel(first.id)  # ended: only the throttle refuses now
        clock.now += 59
        assert await s.submit(Save("a", "2"), throttle=60) == Duplicate(first.id)
        clock.now += 2
        second = await s.submit(Save("a", "3"), throttle=60)
        assert isinstance(second, Submitted) and second.id != first.id


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"debounce": -1.0}, "debounce must be > 0, got -1.0"),
        ({"debounce": math.nan}, "debounce must be a finite number, got nan"),
        ({"throttle": "5"}, "throttle must be a number, got '5'"),
        ({"throttle": 0}, "throttle must be > 0, got 0"),
        ({"debounce": 1.0, "throttle": 2.0}, "not both (debounce=1.0, throttle=2.0)"),
        ({"debounce": 1.0, "delay": 3}, "debounce=1.0 takes no delay= or run_at="),
        ({"debounce": 1.0, "depends_on": [1]}, "debounce=1.0 takes no depends_on= or parent="),
        ({"throttle": 1.0, "recurring": Every(60)}, "throttle=1.0 takes no recurring="),
    ],
)
async def test_bad_flow_options_are_refused_at_submission(
    options: dict[str, object], message: str
) -> None:
    async with Scheduler("memory://", domains=[docs_domain([])], worker=False) as s:
        with pytest.raises(ConfigError, match="submit docs::save") as info:
            await s.submit(Save("a", "x"), **options)  # type: ignore[arg-type]
        assert message in str(info.value)
        assert await s.jobs() == []


async def test_debounce_needs_a_key() -> None:
    plain = Domain("plain")

    @plain.job
    async def note(job: Save, ctx: JobContext) -> None: ...

    async with Scheduler("memory://", domains=[plain], worker=False) as s:
        with pytest.raises(ConfigError, match=r"debounce=5 needs a dedup key \(key="):
            await s.submit(Save("a", "x"), debounce=5)
        out = await s.submit(Save("a", "x"), debounce=5, key="a")
        assert isinstance(out, Submitted)


@attrs.frozen
class Work:
    name: str


@asynccontextmanager
async def gated_scheduler(
    store_kind: str, tmp_path: Path
) -> AsyncIterator[tuple[Scheduler, dict[str, anyio.Event], anyio.Event, list[str]]]:
    """A running scheduler with domains `media` (jobs wait for `gate`) and `mail`."""
    media, mail = Domain("media"), Domain("mail")
    started = {"slow": anyio.Event()}
    gate = anyio.Event()
    ran: list[str] = []

    @media.job
    async def resize(job: Work, ctx: JobContext) -> str:
        ran.append(job.name)
        if job.name == "slow":
            started["slow"].set()
            await gate.wait()
        return job.name

    @media.job
    async def crop(job: Work, ctx: JobContext) -> str:
        ran.append(job.name)
        return job.name

    @mail.job
    async def send(job: Work, ctx: JobContext) -> str:
        ran.append(job.name)
        return job.name

    store = make_store(store_kind, tmp_path, __import__("time").time)
    scheduler = Scheduler(store, domains=[media, mail], max_concurrency=1, poll_interval=0.05)
    async with running(scheduler) as s:
        yield s, started, gate, ran


async def test_paused_domain_finishes_running_jobs_and_starts_none(
    store_kind: str, tmp_path: Path
) -> None:
    async with gated_scheduler(store_kind, tmp_path) as (s, started, gate, ran):
        slow = await s.submit(Work("slow"), type="media::resize")
        await started["slow"].wait()
        assert await s.pause_domain("media") is True
        assert await s.pause_domain("media") is False
        assert [p.name for p in await s.paused()] == ["media"]
        held = await s.submit(Work("held"), type="media::resize", priority=30)
        gate.set()
        assert await s.result(slow.id, timeout=10) == "slow"  # the running job finished
        # A job of another domain submitted later, at a lower priority, runs first.
        mail = await s.submit(Work("mail"), type="mail::send")
        assert await s.result(mail.id, timeout=10) == "mail"
        assert ran == ["slow", "mail"]
        assert (await s.get(held.id)).state is JobState.PENDING  # type: ignore[union-attr]
        assert await s.resume_domain("media") is True
        assert await s.resume_domain("media") is False
        assert await s.result(held.id, timeout=10) == "held"
        assert await s.paused() == []


async def test_paused_type_holds_only_that_type(store_kind: str, tmp_path: Path) -> None:
    async with gated_scheduler(store_kind, tmp_path) as (s, _, gate, ran):
        gate.set()
        assert await s.pause_type("media::crop") is True
        [paused] = await s.paused()
        assert (paused.kind, paused.name) == ("type", "media::crop")
        held = await s.submit(Work("held"), type="media::crop", priority=30)
        other = await s.submit(Work("other"), type="media::resize")
        assert await s.result(other.id, timeout=10) == "other"
        assert (await s.get(held.id)).state is JobState.PENDING  # type: ignore[union-attr]
        await s.resume_type(s.types["media::crop"])
        assert await s.result(held.id, timeout=10) == "held"
        assert ran == ["other", "held"]


@pytest.mark.parametrize(
    ("call", "value", "message"),
    [
        ("pause_domain", "", "pause_domain: expected a domain or its name, got ''"),
        ("pause_domain", "media::resize", "'media::resize' is a job type, not a domain"),
        ("resume_type", "media", "resume_type: job type 'media' must be written domain::name"),
        ("pause_type", 3, "pause_type: expected a type or its name, got 3"),
    ],
)
async def test_bad_pause_names_are_refused(call: str, value: object, message: str) -> None:
    async with Scheduler("memory://", domains=[Domain("media")], worker=False) as s:
        with pytest.raises(ConfigError) as info:
            await getattr(s, call)(value)
        assert message in str(info.value)
        assert await s.paused() == []


async def test_paused_flow_record() -> None:
    async with Scheduler("memory://", domains=[Domain("media")], worker=False) as s:
        await s.pause_domain(Domain("media"))
        [flow] = await s.paused()
        assert isinstance(flow, PausedFlow) and flow.kind == "domain"


async def test_metrics_show_paused_domains_and_types(tmp_path: Path) -> None:
    from wireframe import scheduler_metrics

    media, mail = Domain("media"), Domain("mail")

    @media.job
    async def resize(job: Work, ctx: JobContext) -> None: ...

    @mail.job
    async def send(job: Work, ctx: JobContext) -> None: ...

    async with Scheduler(tmp_path / "jobs.db", domains=[media, mail], worker=False) as s:
        collect = scheduler_metrics(s)
        await s.pause_domain("media")
        await s.pause_type("mail::send")
        await s.pause_domain("unknown")  # not registered here: no series minted for it
        families = {f.name: f for f in await collect()}
        domains = {x.labels["domain"]: x.value for x in families["wireframe_domain_paused"].samples}
        assert domains == {"mail": 0, "media": 1}
        types = {x.labels["type"]: x.value for x in families["wireframe_type_paused"].samples}
        assert types == {"mail::send": 1, "media::resize": 0}
        await s.resume_domain("media")
        families = {f.name: f for f in await collect()}
        samples = families["wireframe_domain_paused"].samples
        assert {x.labels["domain"]: x.value for x in samples} == {"mail": 0, "media": 0}
        collect.close()
