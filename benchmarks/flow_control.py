"""Concurrency keys and fair share: what they cost end to end, and per claim as keys multiply.

python benchmarks/flow_control.py --store sqlite
python benchmarks/flow_control.py --store postgresql://postgres@127.0.0.1/test --workers 4
python benchmarks/flow_control.py --store memory --claims-only

1. End to end (enqueue to last completion) of -n no-op jobs: without keys, then with --keys
   distinct concurrency keys (fair share), then the same with max_per_key=2. Printed with the
   ratio to the keyless run (the goal: at least 80 %).
2. Claim cost against the number of keys: a store holding --backlog pending jobs spread over
   10, 1,000 and 100,000 keys (max_per_key=2), claimed --limit at a time and completed at once,
   straight on the store (no scheduler): claims per second should not fall as keys multiply.
"""

from __future__ import annotations

import argparse
import functools
import time
from typing import Any

import anyio
from rich.console import Console

from wireframe import Domain, JobContext, JobState, Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.store import ClaimRequest, Complete, NewJob, Store, store_from_url

from _common import Noop, store_url, temp_dir
from _procs import fresh_schema, worker_processes

KEY_COUNTS = (10, 1_000, 100_000)


def keyed_domain(
    ran: Any = None, slot: int = 0, *, keys: int = 0, cap: int | None = None
) -> Domain:
    """The `bench` domain's no-op job, keyed by `n % keys` when `keys` (capped at `cap`)."""
    options: dict[str, Any] = {}
    if keys:
        options = {"concurrency_key": functools.partial(_key, keys), "max_per_key": cap}
    bench = Domain("bench", **options)
    count = 0

    @bench.job
    async def noop(job: Noop, ctx: JobContext) -> None:
        nonlocal count
        if ran is not None:
            count += 1
            ran[slot] = count

    return bench


def _key(keys: int, job: Noop) -> str:
    return f"k{job.n % keys}"


async def end_to_end_in_process(
    url: str, n: int, keys: int, cap: int | None, concurrency: int
) -> float:
    """Jobs per second from the first enqueue to the last completion, one process."""
    ran = [0]
    domain = keyed_domain(ran, 0, keys=keys, cap=cap)
    scheduler = Scheduler(url, domains=[domain], max_concurrency=concurrency, batch_size=64)
    await scheduler.open()
    stop = StopReceiver()
    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, stop)
        for start in range(0, n, 1000):
            await scheduler.submit_many([Noop(i) for i in range(start, min(n, start + 1000))])
        while ran[0] < n:  # noqa: ASYNC110 - counting in the handler keeps the store unloaded
            await anyio.sleep(0.005)
        while (await scheduler.snapshot()).count(JobState.COMPLETED) < n:  # noqa: ASYNC110
            await anyio.sleep(0.001)  # the last completion batch is being written
        t1 = time.perf_counter()
        stop._request(StopReason(StopReasonKind.REQUESTED))
    await scheduler.close()
    return n / (t1 - t0)


async def end_to_end_processes(
    url: str, n: int, keys: int, cap: int | None, workers: int, concurrency: int
) -> float:
    """Jobs per second from the first enqueue to the last completion, `workers` processes."""
    client = Scheduler(url, domains=[keyed_domain(keys=keys, cap=cap)], worker=False)
    await client.open()
    factory = functools.partial(keyed_domain, keys=keys, cap=cap)
    try:
        with worker_processes(
            url, workers, domain=factory, max_concurrency=concurrency, batch_size=64
        ) as ran:
            t0 = time.time()
            for start in range(0, n, 1000):
                await client.submit_many([Noop(i) for i in range(start, min(n, start + 1000))])
            while sum(ran) < n:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            while (await client.snapshot()).count(JobState.COMPLETED) < n:  # noqa: ASYNC110
                await anyio.sleep(0.05)
            done = await client.store.list_jobs(states=[JobState.COMPLETED], limit=n)
            t1 = max(job.finished_at or 0.0 for job in done)
    finally:
        await client.close()
    return n / (t1 - t0)


async def claim_rate(url: str, backlog: int, keys: int, limit: int, rounds: int) -> float:
    """Claim calls per second on a store holding `backlog` jobs over `keys` keys (cap 2)."""
    store: Store = store_from_url(url)
    await store.open()
    try:
        for start in range(0, backlog, 5000):
            await store.submit(
                [
                    NewJob(
                        "bench::noop",
                        "bench",
                        "{}",
                        flow_key=f"bench|k{i % keys}" if keys else None,
                        key_cap=2 if keys else None,
                    )
                    for i in range(start, min(backlog, start + 5000))
                ]
            )
        request = ClaimRequest("w", limit, 60.0, ("bench",))
        t0 = time.perf_counter()
        for _ in range(rounds):
            jobs = await store.claim(request)
            await store.finish([Complete(j.lease, None) for j in jobs])
        return rounds / (time.perf_counter() - t0)
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="sqlite", help="memory, sqlite, or a store URL")
    parser.add_argument("-n", type=int, default=20_000, help="jobs of each end-to-end run")
    parser.add_argument("--keys", type=int, default=10_000, help="distinct keys end to end")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: this one)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--backlog", type=int, default=100_000, help="pending jobs (claims)")
    parser.add_argument("--limit", type=int, default=16, help="jobs per claim (claims)")
    parser.add_argument("--rounds", type=int, default=1000, help="claims timed")
    parser.add_argument("--claims-only", action="store_true")
    parser.add_argument("--end-to-end-only", action="store_true")
    args = parser.parse_args()
    console = Console()
    if not args.claims_only:
        console.print(
            f"[bold]end to end[/] n={args.n} keys={args.keys} "
            f"workers={args.workers or 'in-process'} concurrency={args.concurrency}"
        )
        base = None
        for label, keys, cap in (
            ("no keys", 0, None),
            (f"{args.keys:,} keys, fair share", args.keys, None),
            (f"{args.keys:,} keys, fair share, max_per_key=2", args.keys, 2),
        ):
            rate = _end_to_end(args, keys, cap)
            base = base or rate
            console.print(f"  {label:>42}: {rate:>9,.0f} jobs/s  ({rate / base:.0%} of no keys)")
    if args.end_to_end_only:
        return
    console.print(
        f"[bold]claims[/] backlog={args.backlog:,} limit={args.limit} rounds={args.rounds}"
    )
    for keys in (0, *KEY_COUNTS):
        with temp_dir() as tmp, fresh_schema(store_url(args.store, tmp)) as url:
            rate = anyio.run(claim_rate, url, args.backlog, keys, args.limit, args.rounds)
        label = f"{keys:,} keys, max_per_key=2" if keys else "no keys"
        console.print(f"  {label:>30}: {rate:>9,.0f} claims/s")


def _end_to_end(args: argparse.Namespace, keys: int, cap: int | None) -> float:
    with temp_dir() as tmp, fresh_schema(store_url(args.store, tmp)) as url:
        if args.workers:
            return anyio.run(
                end_to_end_processes, url, args.n, keys, cap, args.workers, args.concurrency
            )
        return anyio.run(end_to_end_in_process, url, args.n, keys, cap, args.concurrency)


if __name__ == "__main__":
    main()
