"""The issue's yardsticks, measured on this host: what bare Python does without wireframe.

python benchmarks/reference.py

Prints four figures that the scheduler issue quotes "for scale" on the reference machine:
a bare sqlite3 loop claiming and completing one job per transaction, the same in batches of
100, an anyio worker pool moving no-op items through a memory stream, and one anyio task per
item behind a CapacityLimiter. Reading wireframe's figures against these on the same host
separates the host's speed from the library's.
"""

from __future__ import annotations

import argparse
import sqlite3
import time
from pathlib import Path

import anyio

from _common import temp_dir


def _sqlite_db(path: Path, n: int) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL, "
        "priority INTEGER NOT NULL, result TEXT)"
    )
    db.execute("CREATE INDEX jobs_pending ON jobs (state, priority DESC, id)")
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO jobs (state, priority) VALUES ('pending', 0)", ([] for _ in range(n))
    )
    db.execute("COMMIT")
    return db


def bare_sqlite(n: int, batch: int) -> float:
    """Claim and complete `n` jobs, `batch` per pair of transactions; jobs/s."""
    with temp_dir() as tmp:
        db = _sqlite_db(Path(tmp) / "ref.db", n)
        started = time.perf_counter()
        done = 0
        while done < n:
            db.execute("BEGIN IMMEDIATE")
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM jobs WHERE state = 'pending' "
                    "ORDER BY priority DESC, id LIMIT ?",
                    (batch,),
                )
            ]
            db.executemany("UPDATE jobs SET state = 'running' WHERE id = ?", ((i,) for i in ids))
            db.execute("COMMIT")
            db.execute("BEGIN IMMEDIATE")
            db.executemany(
                "UPDATE jobs SET state = 'completed', result = 'null' WHERE id = ?",
                ((i,) for i in ids),
            )
            db.execute("COMMIT")
            done += len(ids)
        elapsed = time.perf_counter() - started
        db.close()
    return n / elapsed


async def anyio_pool(n: int, workers: int) -> float:
    """`workers` tasks take no-op items from one memory stream; items/s."""
    send, receive = anyio.create_memory_object_stream[int](workers)
    started = time.perf_counter()

    async def work() -> None:
        async with receive.clone() as items:
            async for _ in items:
                await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(workers):
            tg.start_soon(work)
        async with send:
            for i in range(n):
                await send.send(i)
        receive.close()
    return n / (time.perf_counter() - started)


async def task_per_item(n: int, limit: int) -> float:
    """One anyio task per no-op item behind a CapacityLimiter; items/s."""
    limiter = anyio.CapacityLimiter(limit)
    started = time.perf_counter()

    async def one() -> None:
        async with limiter:
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    start = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i
    print(f"calibration: 5M-iteration Python loop {time.perf_counter() - start:.2f} s")
    print(f"bare sqlite3, 1 job per transaction:  {bare_sqlite(args.n, 1):>10,.0f} jobs/s")
    print(f"bare sqlite3, batches of 100:         {bare_sqlite(args.n, 100):>10,.0f} jobs/s")
    pool = anyio.run(anyio_pool, args.n, 64, backend=args.backend)
    print(f"anyio pool of 64, no-op items:        {pool:>10,.0f} items/s ({args.backend})")
    spawn = anyio.run(task_per_item, args.n, 64, backend=args.backend)
    print(f"anyio task per item, limiter of 64:   {spawn:>10,.0f} items/s ({args.backend})")


if __name__ == "__main__":
    main()
