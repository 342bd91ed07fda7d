"""Store-level throughput: submit N jobs in one call, then claim(limit=64)+finish loops to empty.

    python benchmarks/store_ops.py [-n 20000] [--store memory|sqlite|both] [--batch 64]

SQLite runs in a temporary directory with WAL and synchronous=NORMAL.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import anyio

from wireframe.store import (
    ClaimRequest,
    Complete,
    MemoryStore,
    NewJob,
    PostgresStore,
    SqliteStore,
    Store,
)


async def bench(store: Store, label: str, n: int, batch: int) -> None:
    await store.open()
    try:
        jobs = [NewJob(type="bench::noop", domain="bench", payload="{}") for _ in range(n)]
        started = time.perf_counter()
        results = await store.submit(jobs)
        enqueue = time.perf_counter() - started
        assert len(results) == n
        request = ClaimRequest(worker_id="bench", limit=batch, lease_ttl=60.0, domains=("bench",))
        done = 0
        started = time.perf_counter()
        while claimed := await store.claim(request):
            applied = await store.finish([Complete(j.lease, None) for j in claimed])
            done += sum(applied)
        drain = time.perf_counter() - started
        assert done == n, (done, n)
        print(
            f"{label:7s} n={n}  submit: {n / enqueue:10,.0f} jobs/s ({enqueue * 1000:7.1f} ms)  "
            f"claim+complete (batch {batch}): {n / drain:9,.0f} jobs/s ({drain * 1000:7.1f} ms)"
        )
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--store", choices=["memory", "sqlite", "both", "postgres"], default="both")
    parser.add_argument(
        "--pg", default="postgresql://postgres@127.0.0.1:5432/test", help="with --store postgres"
    )
    args = parser.parse_args()
    if args.store in ("memory", "both"):
        await bench(MemoryStore(), "memory", args.n, args.batch)
    if args.store in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            store = SqliteStore(Path(tmp) / "bench.db", synchronous="NORMAL")
            await bench(store, "sqlite", args.n, args.batch)
    if args.store == "postgres":
        from _procs import fresh_schema

        with fresh_schema(args.pg) as url:
            await bench(PostgresStore(url), "postgres", args.n, args.batch)


if __name__ == "__main__":
    anyio.run(main)
