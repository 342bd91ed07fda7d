"""The app of the lock-order soak (`test_lock_order_soak.py`): trees of jobs whose ends cascade.

Parents spawn children (and a subtree), check-point steps, sleep durably, join children and emit
events; leaves sleep, fail once and retry, or fail for good (the parent is fail_fast by default,
so a failing child cancels its siblings and fails the parent); other jobs depend on trees or
wait for their events. Worker options come from the environment (WF_CLAIM_TTL, WF_CONCURRENCY);
every handler that returns records its job and attempt in the table `runs` of WF_RECORD_DSN's
schema WF_SCHEMA, so that the test can tell a job that ran to its end twice.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import anyio
import attrs

from wireframe import (
    ChildCancelled,
    ChildFailed,
    Domain,
    EventTimeout,
    JobContext,
    Retry,
    Scheduler,
)

soak = Domain("soak")

_local = threading.local()


def record(ctx: JobContext) -> None:
    """Note that this job's handler ran to its end (once per job, unless something is wrong)."""
    conn: Any = getattr(_local, "conn", None)
    if conn is None:
        import psycopg

        conn = psycopg.connect(os.environ["WF_RECORD_DSN"], autocommit=True)
        conn.execute(f"SET search_path TO {os.environ['WF_SCHEMA']}")
        _local.conn = conn
    conn.execute(
        "INSERT INTO runs (job_id, attempt, worker) VALUES (%s, %s, %s)",
        (ctx.job.id, ctx.job.attempt, ctx.job.worker_id),
    )


@attrs.frozen
class Leaf:
    n: int
    sleep: float = 0.0
    flaky: bool = False
    """Fails its first attempt, then succeeds."""
    broken: bool = False
    """Fails every attempt."""


@soak.job(name="leaf", retry=Retry.fixed(attempts=2, delay=0.05))
async def leaf(job: Leaf, ctx: JobContext) -> int:
    await anyio.sleep(job.sleep)
    if job.broken:
        raise RuntimeError(f"leaf {job.n} is broken")
    if job.flaky and ctx.job.attempt == 1:
        raise RuntimeError(f"leaf {job.n} fails its first attempt")
    record(ctx)
    return job.n


@attrs.frozen
class Tree:
    n: int
    kids: int
    depth: int = 0
    """Levels of subtrees below this one."""
    failing: bool = False
    """One child fails for good: fail_fast cancels its siblings and fails this parent."""
    durable: bool = False
    """Sleeps durably and joins its first children before it returns."""


def _value(n: int) -> int:
    return n


@soak.job(name="tree")
async def tree(job: Tree, ctx: JobContext) -> int:
    base = await ctx.step("base", _value, job.n)
    handles = []
    for i in range(job.kids):
        leaf = Leaf(
            i,
            sleep=0.03 * (i % 4),
            flaky=i % 3 == 1,
            broken=job.failing and i == job.kids - 1,
        )
        handles.append(await ctx.spawn(leaf, type="soak::leaf"))
    if job.depth > 0:
        below = Tree(job.n * 10, max(1, job.kids - 1), job.depth - 1, durable=job.durable)
        handles.append(await ctx.spawn(below, type="soak::tree"))
    if job.durable:
        await ctx.sleep("nap", 0.1)
        for handle in handles[:2]:
            try:
                await ctx.join(handle)
            except (ChildFailed, ChildCancelled):
                pass
    await ctx.step("done", _value, base)
    await ctx.emit_event(f"tree:{job.n}", base)
    record(ctx)
    return base


@attrs.frozen
class Waiter:
    n: int


@soak.job(name="waiter")
async def waiter(job: Waiter, ctx: JobContext) -> None:
    try:
        await ctx.wait_event(f"tree:{job.n}", timeout=20)
    except EventTimeout:
        pass  # its tree failed before emitting
    record(ctx)


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


scheduler = Scheduler(
    "memory://",
    domains=[soak],
    claim_ttl=_env("WF_CLAIM_TTL", 3.0),
    poll_interval=0.2,
    max_concurrency=int(_env("WF_CONCURRENCY", 8)),
    cancel_grace=0.2,
)
