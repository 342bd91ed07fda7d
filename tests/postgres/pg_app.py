"""The app the multi-process tests run with `python -m wireframe worker --app pg_app:scheduler`.

Worker options come from the environment (WF_CLAIM_TTL, WF_POLL, WF_AGING, WF_BATCH); handlers
record every run before finishing: into the table `runs` of WF_RECORD_DSN's schema WF_SCHEMA,
or (SQLite tests) as a line appended to WF_RECORD_FILE.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import anyio
import attrs

from wireframe import Domain, JobContext, Retry, Scheduler

t = Domain("t")

_local = threading.local()


@attrs.frozen
class Rec:
    n: int
    sleep: float = 0.0


@attrs.frozen
class Hold:
    n: int


def _record(ctx: JobContext) -> None:
    job = ctx.job
    path = os.environ.get("WF_RECORD_FILE")
    if path:
        with open(path, "a") as f:
            f.write(f"{job.id} {job.attempt} {job.worker_id} {os.getpid()}\n")
        return
    conn: Any = getattr(_local, "conn", None)
    if conn is None:
        import psycopg

        conn = psycopg.connect(os.environ["WF_RECORD_DSN"], autocommit=True)
        conn.execute(f"SET search_path TO {os.environ['WF_SCHEMA']}")
        _local.conn = conn
    conn.execute(
        "INSERT INTO runs (job_id, attempt, worker) VALUES (%s, %s, %s)",
        (job.id, job.attempt, job.worker_id),
    )


@t.job(name="rec", retry=Retry.fixed(attempts=5, delay=0.0))
async def rec(job: Rec, ctx: JobContext) -> None:
    if job.sleep:
        await anyio.sleep(job.sleep)
    _record(ctx)


@t.job(name="hold")
async def hold(job: Hold, ctx: JobContext) -> None:
    _record(ctx)
    await anyio.sleep(3600)


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


scheduler = Scheduler(
    "memory://",
    domains=[t],
    claim_ttl=_env("WF_CLAIM_TTL", 2.0),
    poll_interval=_env("WF_POLL", 1.0),
    aging_interval=_env("WF_AGING", 60.0),
    batch_size=int(_env("WF_BATCH", 64)),
    max_concurrency=int(_env("WF_CONCURRENCY", 16)),
    cancel_grace=0.1,
)
