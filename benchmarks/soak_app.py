"""The app the chaos soak runs: `python -m wireframe worker --app soak_app:scheduler`.

Job types mix plain jobs, retries, durable steps, durable sleeps and parents with children.
Every handler records each invocation at its start (job id, attempt, claim, worker) in the
table `soak_runs`, and every durable step writes one row to `soak_effects`: both tables live in
the soak's own database (SOAK_RECORD: a postgresql:// URL or a SQLite file path) and are written
through a connection of their own, outside the store's transactions, as a real side effect would.
A record is retried until the database answers (it may be restarting), and carries a token so a
retried insert whose acknowledgement was lost is not counted twice.

Worker settings come from the environment: SOAK_CLAIM_TTL, SOAK_CONCURRENCY, SOAK_POLL,
SOAK_BATCH.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import anyio.to_thread
import attrs

from wireframe import ChildFailed, Domain, JobContext, Retry, Scheduler

soak = Domain("soak")

RETRY = Retry.fixed(attempts=6, delay=0.2)
"""Every type but `doomed`: enough attempts that a few lease expiries do not end a job."""

SIDE_TABLES = (
    "CREATE TABLE IF NOT EXISTS soak_runs (token TEXT PRIMARY KEY, job_id BIGINT NOT NULL, "
    "kind TEXT NOT NULL, attempt INTEGER NOT NULL, claim_seq INTEGER NOT NULL, "
    "worker TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)",
    "CREATE TABLE IF NOT EXISTS soak_effects (token TEXT PRIMARY KEY, job_id BIGINT NOT NULL, "
    "step TEXT NOT NULL, attempt INTEGER NOT NULL, claim_seq INTEGER NOT NULL, "
    "worker TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)",
)


@attrs.frozen
class Plain:
    seq: int
    work: float


@attrs.frozen
class Flaky:
    seq: int
    work: float
    fails: int


@attrs.frozen
class Steps:
    seq: int
    work: float
    steps: int


@attrs.frozen
class Nap:
    seq: int
    nap: float


@attrs.frozen
class Parent:
    seq: int
    children: int
    mode: str  # "ok"; "fail_fast": a child fails the parent (submitted with fail_fast, the
    # default); "tolerant": submitted with fail_fast=False, it joins the failed child and goes on


@attrs.frozen
class Child:
    seq: int
    index: int
    work: float


@attrs.frozen
class Doomed:
    seq: int
    index: int


# -- recording ----------------------------------------------------------------------------------

log = logging.getLogger("soak_app")
_lock = threading.Lock()
_conn: Any = None


def _connect() -> Any:
    target = os.environ["SOAK_RECORD"]
    if target.startswith(("postgresql://", "postgres://")):
        import psycopg

        return psycopg.connect(target, autocommit=True, connect_timeout=5)
    return sqlite3.connect(target, timeout=60, isolation_level=None, check_same_thread=False)


def _insert_now(table: str, row: tuple[Any, ...]) -> None:
    """Insert one row (retrying until the database answers, for at most 10 minutes).

    One connection per process, one insert at a time: a few hundred inserts a second need no
    more, and a busy soak must not run out of PostgreSQL connections.
    """
    global _conn
    deadline = time.monotonic() + 600
    with _lock:
        while True:
            try:
                if _conn is None:
                    _conn = _connect()
                mark = "?" if isinstance(_conn, sqlite3.Connection) else "%s"
                marks = ", ".join([mark] * len(row))
                _conn.execute(f"INSERT INTO {table} VALUES ({marks}) ON CONFLICT DO NOTHING", row)
                return
            except Exception as exc:
                _drop()
                if time.monotonic() > deadline:
                    raise
                log.warning("soak record into %s failed, retrying: %r", table, exc)
                time.sleep(0.2)


def _drop() -> None:
    global _conn
    conn, _conn = _conn, None
    if conn is not None:
        try:
            conn.close()
        except Exception:
            pass


async def _insert(table: str, what: str, ctx: JobContext) -> None:
    job = ctx.job
    row = (uuid.uuid4().hex, job.id, what, job.attempt, job.claim_seq, job.worker_id, time.time())
    await anyio.to_thread.run_sync(_insert_now, table, row)


async def started(ctx: JobContext, kind: str) -> None:
    """Record that this invocation started (one row per run of the handler)."""
    await _insert("soak_runs", kind, ctx)


def effect(ctx: JobContext, name: str) -> Callable[[], Awaitable[str]]:
    """A step body whose side effect is one row in `soak_effects`."""

    async def run() -> str:
        await _insert("soak_effects", name, ctx)
        return name

    return run


# -- job types ----------------------------------------------------------------------------------


@soak.job(retry=RETRY)
async def plain(job: Plain, ctx: JobContext) -> int:
    await started(ctx, "plain")
    await anyio.sleep(job.work)
    return job.seq


@soak.job(retry=RETRY)
async def flaky(job: Flaky, ctx: JobContext) -> int:
    await started(ctx, "flaky")
    await anyio.sleep(job.work)
    if ctx.job.attempt <= job.fails:
        raise RuntimeError(f"flaky job {job.seq} fails attempt {ctx.job.attempt} on purpose")
    return job.seq


@soak.job(retry=RETRY)
async def steps(job: Steps, ctx: JobContext) -> int:
    await started(ctx, "steps")
    for i in range(job.steps):
        await anyio.sleep(job.work)
        await ctx.step(f"s{i}", effect(ctx, f"s{i}"))
    return job.seq


@soak.job(retry=RETRY)
async def nap(job: Nap, ctx: JobContext) -> int:
    await started(ctx, "nap")
    await ctx.step("before", effect(ctx, "before"))
    await ctx.sleep("nap", job.nap)
    await ctx.step("after", effect(ctx, "after"))
    return job.seq


@soak.job(retry=RETRY)
async def parent(job: Parent, ctx: JobContext) -> int:
    await started(ctx, "parent")
    await ctx.step("plan", effect(ctx, "plan"))
    handles = [await ctx.spawn(Child(job.seq, i, 0.005)) for i in range(job.children)]
    if job.mode != "ok":
        handles.append(await ctx.spawn(Doomed(job.seq, 0)))
    for handle in handles:
        try:
            await ctx.join(handle)
        except ChildFailed:
            if job.mode != "tolerant":
                raise
    await ctx.step("wrap", effect(ctx, "wrap"))
    return job.seq


@soak.job(retry=RETRY)
async def child(job: Child, ctx: JobContext) -> int:
    await started(ctx, "child")
    await anyio.sleep(job.work)
    return job.index


@soak.job(retry=Retry.none())
async def doomed(job: Doomed, ctx: JobContext) -> None:
    await started(ctx, "doomed")
    raise RuntimeError(f"child of parent {job.seq} fails on purpose")


SUSPENDING_KINDS = ("nap", "parent")
"""Kinds whose handler runs again at the same attempt after a durable sleep or a join."""


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


scheduler = Scheduler(
    "memory://",
    domains=[soak],
    claim_ttl=_env("SOAK_CLAIM_TTL", 3.0),
    max_concurrency=int(_env("SOAK_CONCURRENCY", 16)),
    poll_interval=_env("SOAK_POLL", 0.5),
    batch_size=int(_env("SOAK_BATCH", 16)),
    cancel_grace=0.5,
)
