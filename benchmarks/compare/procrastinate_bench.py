"""Procrastinate: enqueue and end-to-end rates for no-op jobs, in one process.

/tmp/compare-venv/bin/python benchmarks/compare/procrastinate_bench.py
/tmp/compare-venv/bin/python benchmarks/compare/procrastinate_bench.py --concurrency 10

Applies Procrastinate's schema to a fresh database `cmp_<random>` (dropped afterwards),
defers -n jobs of an async no-op task with Task.batch_defer_async (--batch jobs a call;
--batch 1 defers them one by one with defer_async), then runs a worker with wait=False,
which returns once it has caught up with the queue and its running jobs have finished (each
job's final status written). Procrastinate fetches one job per query; --concurrency is the
worker's (its default is 1). End to end is n / (time from the first defer to the last
completion), as in benchmarks/throughput.py.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from importlib.metadata import version

import procrastinate
import psycopg
from _cmpdb import DEFAULT_DSN, fresh_database, redact, report


async def succeeded(dsn: str) -> int:
    """Jobs with status 'succeeded'."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'"
        )
        row = await cur.fetchone()
    return int(row[0]) if row else 0


async def measure(dsn: str, n: int, batch: int, concurrency: int) -> dict[str, float]:
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=dsn))
    count = 0

    @app.task(name="noop")
    async def noop(i: int) -> None:
        nonlocal count
        count += 1

    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        t0 = time.perf_counter()
        if batch <= 1:
            for i in range(n):
                await noop.defer_async(i=i)
        else:
            for start in range(0, n, batch):
                await noop.batch_defer_async(
                    *({"i": i} for i in range(start, min(n, start + batch)))
                )
        t1 = time.perf_counter()
        await app.run_worker_async(
            wait=False, concurrency=concurrency, install_signal_handlers=False
        )
        t2 = time.perf_counter()
    if count != n or (done := await succeeded(dsn)) != n:
        raise RuntimeError(f"{count} of {n} jobs ran, {done} succeeded")
    return {"enqueue": n / (t1 - t0), "drain": n / (t2 - t1), "end to end": n / (t2 - t0)}


async def run(args: argparse.Namespace) -> dict[str, float]:
    async with fresh_database(args.dsn) as dsn:
        return await measure(dsn, args.n, args.batch, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="server to create the database on")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument(
        "--batch", type=int, default=1000, help="jobs per batch_defer call (1: defer each)"
    )
    parser.add_argument("--concurrency", type=int, default=1, help="worker concurrency")
    args = parser.parse_args()
    # Its warning that the App lives in __main__ matters for workers in other processes only.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    rates = asyncio.run(run(args))
    report(
        f"procrastinate {version('procrastinate')} psycopg {psycopg.__version__} "
        f"server={redact(args.dsn)} n={args.n} batch={args.batch} "
        f"concurrency={args.concurrency} in-process",
        rates,
    )


if __name__ == "__main__":
    main()
