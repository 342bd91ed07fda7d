"""pgqueuer: enqueue and end-to-end rates for no-op jobs, in one process.

/tmp/compare-venv/bin/python benchmarks/compare/pgqueuer_bench.py --batch 100
/tmp/compare-venv/bin/python benchmarks/compare/pgqueuer_bench.py --batch 10
/tmp/compare-venv/bin/python benchmarks/compare/pgqueuer_bench.py --driver psycopg

Enqueues -n jobs with list-form Queries.enqueue (--chunk jobs a statement), then runs a
QueueManager (dequeue batch_size=--batch, no concurrency cap) on its own connection until
every job has run and its completion has been written (the queue table is empty). End to
end is n / (time from the first enqueue to the last completion), as in
benchmarks/throughput.py. Runs in a fresh database `cmp_<random>`, dropped afterwards.

--driver asyncpg (the default, pgqueuer's usual driver) or psycopg. pgqueuer's
PsycopgDriver waits for NOTIFYs on the same connection it queries on (psycopg's notifies()
holds the connection lock, up to 1 s), so the worker's queries queue behind that wait: with
psycopg it measures far lower, which says more about that pairing than about the queue.

--loop asyncio (the default, as benchmarks/throughput.py runs) or uvloop, which pgqueuer's
own CLI (`pgq run`) uses when it is installed (it is a dependency of pgqueuer).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import asyncpg
import pgqueuer
import psycopg
from _cmpdb import DEFAULT_DSN, fresh_database, redact, report
from pgqueuer.models import Job
from pgqueuer.qm import QueueManager
from pgqueuer.queries import Queries


async def queued(queries: Queries) -> int:
    """Jobs still in the queue table (queued or picked: not yet logged as done)."""
    return sum(row.count for row in await queries.queue_size())


async def connect(dsn: str, driver: str) -> tuple[Queries, Callable[[], Awaitable[None]]]:
    """Queries over a new connection with `driver`, and how to close that connection."""
    if driver == "asyncpg":
        apg = await asyncpg.connect(dsn)
        return Queries.from_asyncpg_connection(apg), apg.close
    pg = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    return Queries.from_psycopg_connection(pg), pg.close


async def measure(dsn: str, driver: str, n: int, batch: int, chunk: int) -> dict[str, float]:
    producer, close_producer = await connect(dsn, driver)
    worker_queries, close_worker = await connect(dsn, driver)
    try:
        await producer.install()

        qm = QueueManager(worker_queries)
        done = asyncio.Event()
        count = 0

        @qm.entrypoint("noop")
        async def noop(job: Job) -> None:
            nonlocal count
            count += 1
            if count == n:
                done.set()

        t0 = time.perf_counter()
        for start in range(0, n, chunk):
            size = min(n, start + chunk) - start
            payloads: list[bytes | None] = [str(start + i).encode() for i in range(size)]
            await producer.enqueue(["noop"] * size, payloads, [0] * size)
        t1 = time.perf_counter()
        worker = asyncio.create_task(qm.run(batch_size=batch, dequeue_timeout=timedelta(seconds=1)))
        try:
            await done.wait()
            t2 = time.perf_counter()
            while await queued(producer):  # noqa: ASYNC110
                await asyncio.sleep(0.001)  # the last completion batch is being written
            t3 = time.perf_counter()
        finally:
            qm.shutdown.set()
            await worker
        if count != n:
            raise RuntimeError(f"{count} of {n} jobs ran")
    finally:
        await close_worker()
        await close_producer()
    return {
        "enqueue": n / (t1 - t0),
        "handlers done": n / (t2 - t1),
        "drain": n / (t3 - t1),
        "end to end": n / (t3 - t0),
    }


async def run(args: argparse.Namespace) -> dict[str, float]:
    async with fresh_database(args.dsn) as dsn:
        return await measure(dsn, args.driver, args.n, args.batch, args.chunk)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="server to create the database on")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=100, help="dequeue batch size")
    parser.add_argument("--chunk", type=int, default=1000, help="jobs per enqueue statement")
    parser.add_argument("--driver", default="asyncpg", choices=["asyncpg", "psycopg"])
    parser.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop"])
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        rates = uvloop.run(run(args))
    else:
        rates = asyncio.run(run(args))
    driver_version = asyncpg.__version__ if args.driver == "asyncpg" else psycopg.__version__
    report(
        f"pgqueuer {pgqueuer.__version__} driver={args.driver} {driver_version} "
        f"server={redact(args.dsn)} n={args.n} batch={args.batch} chunk={args.chunk} "
        f"loop={args.loop} in-process",
        rates,
    )


if __name__ == "__main__":
    main()
