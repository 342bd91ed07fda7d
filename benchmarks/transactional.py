"""What transactions cost: submitting inside the application's transaction, and completing a job
inside the handler's transaction.

    python benchmarks/transactional.py [-n 2000] [--store sqlite|postgres|both] [--pg URL]

Submit (one job per application transaction, one at a time, mean per job):
  app only       BEGIN; INSERT the application's row; COMMIT
  app + submit   the same, then a plain `scheduler.submit` (its own transaction)
  in the txn     BEGIN; INSERT; `scheduler.submit(..., connection=conn)`; COMMIT
The claim is that "in the txn" costs no more than "app + submit".

Complete (a worker running N jobs that each write one application row, jobs/s and per job):
  own txn        the handler writes its row in a transaction of its own; the worker's completer
                 completes the job (in batches)
  ctx.txn        the handler writes in `ctx.transaction()`; the runner completes the job in that
                 transaction (one commit per job)
and, at the store level, one job at a time: `store.finish` after the application's own
transaction, against the write and the fenced finish in one lent transaction.

Round trips on PostgreSQL, by construction: a plain submit is 3 (reserve ids, INSERT, COMMIT with
its NOTIFY); a submit on the application's connection is 3 as well (the prologue rides with the
id reservation, then the INSERT, then an epilogue with the NOTIFY) and commits with the
application's COMMIT. A completion in `ctx.transaction()` is 2 (the prologue rides with the
fenced UPDATE, then the COMMIT the handler's writes needed anyway, with its NOTIFY) where the
completer writes many completions in one transaction. On SQLite there are no round trips; the
figures are the extra statements (a savepoint, the file check) and the thread hops.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import attrs

from wireframe import Domain, JobContext, Scheduler
from wireframe.store import ClaimRequest, Complete
from wireframe.testing import running

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
bench = Domain("txbench")


@attrs.frozen
class Row:
    id: int


class App:
    """The application's side: its own connection to the shared database, and its table."""

    def __init__(self, kind: str, target: str, schema: str) -> None:
        self.kind, self.target, self.schema = kind, target, schema
        self.table = "rows" if kind == "sqlite" else f"{schema}.rows"
        self.conn: Any = None

    async def setup(self) -> None:
        if self.kind == "sqlite":
            self.conn = sqlite3.connect(self.target, isolation_level=None, timeout=30)
            self.conn.execute("PRAGMA synchronous = NORMAL")  # as the store's own connections
            self.conn.execute("CREATE TABLE IF NOT EXISTS rows (id INTEGER PRIMARY KEY)")
        else:
            import psycopg

            with psycopg.connect(self.target, autocommit=True) as c:
                c.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                c.execute(f"CREATE TABLE IF NOT EXISTS {self.table} (id BIGINT PRIMARY KEY)")
            self.conn = await psycopg.AsyncConnection.connect(self.target)

    async def begin(self) -> None:
        if self.kind == "sqlite":
            self.conn.execute("BEGIN IMMEDIATE")

    async def insert(self, conn: Any, row_id: int) -> None:
        if self.kind == "sqlite":
            conn.execute("INSERT INTO rows (id) VALUES (?)", (row_id,))
        else:
            await conn.execute(f"INSERT INTO {self.table} (id) VALUES (%s)", (row_id,))

    async def commit(self) -> None:
        if self.kind == "sqlite":
            self.conn.execute("COMMIT")
        else:
            await self.conn.commit()

    async def close(self) -> None:
        if self.kind == "sqlite":
            self.conn.close()
        else:
            await self.conn.close()
            import psycopg

            with psycopg.connect(self.target, autocommit=True) as c:
                c.execute(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")


APP: dict[str, App] = {}


@bench.job
async def own_txn(job: Row, ctx: JobContext) -> None:
    app = APP["app"]
    if app.kind == "sqlite":
        conn = sqlite3.connect(app.target, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO rows (id) VALUES (?)", (job.id,))
            conn.execute("COMMIT")
        finally:
            conn.close()
    else:
        async with APP_POOL["pool"].connection() as conn:
            await conn.execute(f"INSERT INTO {app.table} (id) VALUES (%s)", (job.id,))


@bench.job
async def ctx_txn(job: Row, ctx: JobContext) -> None:
    async with ctx.transaction() as conn:
        await APP["app"].insert(conn, job.id)


APP_POOL: dict[str, Any] = {}


async def per_job(n: int, fn: Callable[[int], Awaitable[None]]) -> float:
    """Mean seconds per call of `fn(i)`, after a short warm-up."""
    for i in range(min(50, n // 10)):
        await fn(-1 - i)
    started = time.perf_counter()
    for i in range(n):
        await fn(i)
    return (time.perf_counter() - started) / n


async def interleaved(n: int, fns: dict[str, Callable[[int], Awaitable[None]]]) -> dict[str, float]:
    """Mean seconds per call of each `fn(i)`, the variants taking turns call by call (so a
    shared machine's load weighs on each alike), after a short warm-up."""
    for i in range(min(50, n // 10)):
        for fn in fns.values():
            await fn(-1 - i)
    spent = dict.fromkeys(fns, 0.0)
    for i in range(n):
        for name, fn in fns.items():
            started = time.perf_counter()
            await fn(i)
            spent[name] += time.perf_counter() - started
    return {name: total / n for name, total in spent.items()}


async def submit_figures(scheduler: Scheduler, app: App, n: int) -> dict[str, float]:
    base = [10_000_000]

    def next_id() -> int:
        base[0] += 1
        return base[0]

    async def app_only(i: int) -> None:
        await app.begin()
        await app.insert(app.conn, next_id())
        await app.commit()

    async def app_and_submit(i: int) -> None:
        await app_only(i)
        await scheduler.submit(Row(i), type=own_txn)

    async def in_txn(i: int) -> None:
        await app.begin()
        await app.insert(app.conn, next_id())
        await scheduler.submit(Row(i), type=own_txn, connection=app.conn)
        await app.commit()

    return await interleaved(
        n, {"app only": app_only, "app + submit": app_and_submit, "in the txn": in_txn}
    )


async def finish_figures(scheduler: Scheduler, app: App, n: int) -> dict[str, float]:
    store: Any = scheduler.store
    jobs = await scheduler.submit_many([Row(i) for i in range(2 * n + 200)], type=own_txn)
    assert len(jobs) == 2 * n + 200
    request = ClaimRequest("bench", 1, 300.0, ("txbench",), housekeep=False)
    base = [20_000_000]

    async def claim_one() -> Any:
        [job] = await store.claim(request)
        return job

    async def finish_after_app(i: int) -> None:
        job = await claim_one()
        base[0] += 1
        await app.begin()
        await app.insert(app.conn, base[0])
        await app.commit()
        started = time.perf_counter()
        await store.finish([Complete(job.lease, None)])
        timings.append(time.perf_counter() - started)

    async def finish_in_lent(i: int) -> None:
        job = await claim_one()
        base[0] += 1
        lent = await store.lend()
        await app.insert(lent.connection, base[0])
        started = time.perf_counter()
        [ok] = await lent.bound.finish([Complete(job.lease, None)])
        await lent.commit()
        timings.append(time.perf_counter() - started)
        assert ok
        lent.bound.committed()

    timings: list[float] = []
    whole_app = await per_job(n, finish_after_app)
    separate = sum(timings[-n:]) / n
    timings = []
    whole_lent = await per_job(n, finish_in_lent)
    in_lent = sum(timings[-n:]) / n
    return {
        "app txn, then store.finish (whole)": whole_app,
        "  of which store.finish": separate,
        "one lent txn: write + finish + commit (whole)": whole_lent,
        "  of which finish + commit": in_lent,
    }


async def worker_figures(url: str, app: App, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, handler in (("own txn", own_txn), ("ctx.txn", ctx_txn)):
        scheduler = Scheduler(url, domains=[bench], max_concurrency=8, poll_interval=0.05)
        await scheduler.open()
        offset = 30_000_000 if name == "own txn" else 40_000_000
        await scheduler.submit_many([Row(offset + i) for i in range(n)], type=handler)
        started = time.perf_counter()
        async with running(scheduler):
            while True:
                pending = await scheduler.jobs(state=["pending", "running"], limit=1)
                if not pending:
                    break
                await anyio.sleep(0.01)
        out[name] = time.perf_counter() - started
        await scheduler.close()
    return out


async def run(kind: str, url: str, target: str, n: int) -> None:
    schema = f"txbench_app_{int(time.time())}"
    app = APP["app"] = App(kind, target, schema)
    await app.setup()
    if kind == "postgres":
        from psycopg_pool import AsyncConnectionPool

        APP_POOL["pool"] = AsyncConnectionPool(target, min_size=8, max_size=8, open=False)
        await APP_POOL["pool"].open()
    try:
        scheduler = Scheduler(url, domains=[bench], worker=False)
        await scheduler.open()
        submit = await submit_figures(scheduler, app, n)
        finish = await finish_figures(scheduler, app, n)
        await scheduler.close()
        workers = await worker_figures(url, app, n)
    finally:
        if "pool" in APP_POOL:
            await APP_POOL.pop("pool").close()
        await app.close()
    print(f"\n{kind}: n={n}")
    print("  submit, one job per application transaction (mean per job):")
    for name, value in submit.items():
        print(f"    {name:14s} {value * 1e6:9.1f} us")
    extra = submit["in the txn"] - submit["app only"]
    plain = submit["app + submit"] - submit["app only"]
    print(
        f"    => submit inside the transaction adds {extra * 1e6:.1f} us; a plain submit "
        f"adds {plain * 1e6:.1f} us (ratio {extra / plain:.2f})"
    )
    print("  complete, one job at a time at the store (mean per job):")
    for name, value in finish.items():
        print(f"    {name:46s} {value * 1e6:9.1f} us")
    print(f"  complete, a worker running {n} jobs that each write one row:")
    for name, value in workers.items():
        print(f"    {name:8s} {n / value:9,.0f} jobs/s  ({value / n * 1e6:8.1f} us per job)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--pg", default=DEFAULT_PG)
    args = parser.parse_args()
    if args.store in ("sqlite", "both"):
        import tempfile

        with tempfile.TemporaryDirectory(prefix="wireframe-bench-") as tmp:
            path = Path(tmp) / "bench.db"
            await run("sqlite", f"sqlite:///{path}", str(path), args.n)
    if args.store in ("postgres", "both"):
        schema = f"txbench_{int(time.time())}"
        try:
            await run("postgres", f"{args.pg}?schema={schema}", args.pg, args.n)
        finally:
            import psycopg

            with psycopg.connect(args.pg, autocommit=True) as c:
                c.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    anyio.run(main)
