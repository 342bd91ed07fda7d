"""Fenced writes through the public API: a stale attempt writes nothing, and a durable call
refused because the job was cancelled (or a child failed with fail_fast) ends the job at once.

On memory, SQLite and PostgreSQL. Where a second `Scheduler(worker=False)` cancels, the
worker hears of it only through the refused durable call (its heartbeat is 15 s away).
"""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import attrs
import pytest

from wireframe import Domain, JobContext, JobFailed, JobState, Retry, Scheduler
from wireframe.durable import LeaseLost
from wireframe.store import (
    ClaimRequest,
    JobRecord,
    LeaseStatus,
    MemoryStore,
    PostgresStore,
    SqliteStore,
)
from wireframe.store import Store as StoreProtocol
from wireframe.testing import running

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from pg_support import drop_schema, new_schema_name, require_pg

pytestmark = pytest.mark.anyio

KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
TTL = 60.0  # heartbeats every 15 s: none falls inside a test
GRACE = 30.0  # a cancellation that waited for the grace period would fail the test


@attrs.frozen
class Item:
    n: int


class Clock:
    """A clock the test moves by hand (starts at the real time)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@asynccontextmanager
async def opened_store(
    kind: str, tmp_path: Path, clock: Callable[[], float] = time.time
) -> AsyncIterator[tuple[StoreProtocol, str | None]]:
    """An open store of `kind` and the URL another client reaches it by (None: memory)."""
    if kind == "memory":
        store: StoreProtocol = MemoryStore(clock=clock)
        url = None
        schema = None
    elif kind == "sqlite":
        store = SqliteStore(tmp_path / "jobs.db", clock=clock)
        url = store.url
        schema = None
    else:
        dsn = require_pg()
        schema = new_schema_name("wffence")
        store = PostgresStore(dsn, schema=schema, clock=clock, pool_size=2)
        url = f"{dsn}?schema={schema}"
    await store.open()
    try:
        yield store, url
    finally:
        await store.close()
        if schema is not None:
            drop_schema(schema)


@asynccontextmanager
async def client_for(scheduler: Scheduler, url: str | None) -> AsyncIterator[Scheduler]:
    """Another client of the same store (a submit-only Scheduler), or `scheduler` on memory."""
    if url is None:
        yield scheduler
        return
    client = Scheduler(url, domains=list(scheduler.domains.values()), worker=False)
    await client.open()
    try:
        yield client
    finally:
        await client.store.close()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stale_attempt_cannot_emit_an_event(kind: str, tmp_path: Path) -> None:
    flow = Domain("flow")
    clock = Clock()
    reached, go, ended = anyio.Event(), anyio.Event(), anyio.Event()
    refused: list[LeaseStatus] = []

    @flow.job(retry=Retry.fixed(attempts=3, delay=0.0))  # a reclaim spends an attempt
    async def emitter(job: Item, ctx: JobContext) -> None:
        if ctx.job.attempt > 1:
            return  # the attempt that took over writes nothing either
        try:
            reached.set()
            await go.wait()
            await ctx.emit_event("done", "from the stale attempt")
        except LeaseLost as exc:
            refused.append(getattr(exc, "status", None))
            raise
        finally:
            ended.set()

    async with opened_store(kind, tmp_path, clock) as (store, _):
        # One slot, busy with the stale attempt: this worker cannot start the job again.
        scheduler = Scheduler(store, domains=[flow], claim_ttl=TTL, max_concurrency=1)
        async with running(scheduler) as s:
            job = await s.submit(Item(1))
            with anyio.fail_after(10):
                await reached.wait()
            stale = await store.get(job.id)
            assert stale is not None
            # Its lease runs out and another claim takes the job over.
            clock.offset += TTL + 1
            with anyio.fail_after(10):
                while not await taken_over(store, stale):
                    await store.claim(ClaimRequest("usurper", 1, TTL, ("flow",)))
            go.set()
            with anyio.fail_after(10):
                await ended.wait()
            assert await store.get_event("done") is None
            assert refused == [LeaseStatus.LOST]
            assert [c.kind for c in await store.checkpoints(job.id)] == []
            # The latch is still free for a current writer.
            assert await s.emit_event("done", "fresh") is True


async def taken_over(store: StoreProtocol, stale: JobRecord) -> bool:
    """Whether a newer claim than `stale`'s holds the job."""
    now = await store.get(stale.id)
    assert now is not None
    return now.state is JobState.RUNNING and now.claim_seq > stale.claim_seq


async def tick(n: int) -> int:
    await anyio.sleep(0.005)
    return n


@pytest.mark.parametrize("kind", KINDS)
async def test_cancel_reaches_a_handler_that_loops_over_steps_at_once(
    kind: str, tmp_path: Path
) -> None:
    flow = Domain("flow")
    stepping = anyio.Event()

    @flow.job
    async def looper(job: Item, ctx: JobContext) -> None:
        n = 0
        while True:  # ignores ctx.cancelled: only its durable calls can stop it
            n += 1
            await ctx.step("tick", tick, n)
            if n == 3:
                stepping.set()

    async with opened_store(kind, tmp_path) as (store, url):
        scheduler = Scheduler(store, domains=[flow], claim_ttl=TTL, cancel_grace=GRACE)
        async with running(scheduler) as s, client_for(s, url) as client:
            job = await s.submit(Item(1))
            with anyio.fail_after(10):
                await stepping.wait()
            started = time.monotonic()
            await client.cancel(job.id)
            with anyio.fail_after(10), pytest.raises(JobFailed):
                await client.result(job.id)
            assert time.monotonic() - started < 2.0
            record = await store.get(job.id)
            assert record is not None and record.state is JobState.CANCELLED


@pytest.mark.parametrize("kind", KINDS)
async def test_a_fail_fast_child_ends_a_parent_that_loops_over_steps_at_once(
    kind: str, tmp_path: Path
) -> None:
    flow = Domain("flow")

    @flow.job
    async def broken(job: Item, ctx: JobContext) -> None:
        raise RuntimeError("child broke")

    @flow.job
    async def parent(job: Item, ctx: JobContext) -> None:
        await ctx.spawn(Item(2), type="flow::broken")
        n = 0
        while True:
            n += 1
            await ctx.step("tick", tick, n)

    async with opened_store(kind, tmp_path) as (store, _):
        scheduler = Scheduler(store, domains=[flow], claim_ttl=TTL, cancel_grace=GRACE)
        async with running(scheduler) as s:
            started = time.monotonic()
            job = await s.submit(Item(1), type="flow::parent")
            with anyio.fail_after(10), pytest.raises(JobFailed, match="child broke"):
                await s.result(job.id)
            assert time.monotonic() - started < 3.0
            record = await store.get(job.id)
            assert record is not None and record.state is JobState.FAILED
