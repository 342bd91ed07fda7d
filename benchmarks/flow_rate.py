"""Rate limits: the start rate achieved against the limit, on memory, SQLite and PostgreSQL.

A domain limited to `--rate` jobs a second (burst `--burst`) gets `rate x seconds + burst` no-op
jobs at once; workers (one in-process scheduler on memory, `--workers` processes on one SQLite
file and on PostgreSQL) run them. From the jobs' start times (the claims' times, as the store
recorded them) it prints the achieved rate after the burst, the most starts in any one-second
and in any tenth-of-a-second window (the limit allows rate x window + burst), and how long the
run took.

    python benchmarks/flow_rate.py                      # memory and sqlite
    python benchmarks/flow_rate.py --pg postgresql://postgres@127.0.0.1:5432/test
    python benchmarks/flow_rate.py --rate 200 --burst 20 --seconds 10 --workers 4
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import anyio

from wireframe import Domain, JobContext, Rate, Scheduler
from wireframe.testing import running

from _common import Noop, store_url, temp_dir
from _procs import fresh_schema, worker_processes


def rated_domain(ran: Any = None, slot: int = 0) -> Domain:
    """The `bench` domain under the rate of WF_BENCH_RATE and WF_BENCH_BURST (a no-op job)."""
    rate = Rate(int(os.environ["WF_BENCH_RATE"]), burst=int(os.environ["WF_BENCH_BURST"]))
    bench = Domain("bench", rate=rate)
    count = 0

    @bench.job
    async def noop(job: Noop, ctx: JobContext) -> None:
        nonlocal count
        if ran is not None:
            count += 1
            ran[slot] = count

    return bench


def most_in(times: list[float], window: float) -> int:
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


async def submit(url: str, n: int) -> None:
    async with Scheduler(url, domains=[rated_domain()], worker=False) as s:
        await s.submit_many([Noop(i) for i in range(n)])


async def start_times(url: str) -> list[float]:
    async with Scheduler(url, domains=[rated_domain()], worker=False) as s:
        jobs = await s.store.list_jobs(limit=10_000_000)
    return sorted(j.started_at for j in jobs if j.started_at is not None)


async def in_process(n: int) -> list[float]:
    """Memory: one scheduler runs them all."""
    async with running(Scheduler("memory://", domains=[rated_domain()], max_concurrency=16)) as s:
        await s.submit_many([Noop(i) for i in range(n)])
        while True:
            jobs = await s.store.list_jobs(limit=n + 1, states=["completed"])  # type: ignore[list-item]
            if len(jobs) == n:
                return sorted(j.started_at for j in jobs if j.started_at is not None)
            await anyio.sleep(0.1)


def across_processes(url: str, n: int, workers: int) -> list[float]:
    anyio.run(submit, url, n)
    with worker_processes(url, workers, domain=rated_domain, max_concurrency=16) as ran:
        while sum(ran) < n:
            time.sleep(0.05)
    return anyio.run(start_times, url)


def report(name: str, times: list[float], rate: int, burst: int) -> None:
    span = times[-1] - times[0]
    achieved = (len(times) - burst) / span if span > 0 else float("inf")
    print(
        f"{name:<22} {len(times):>6} jobs  limit {rate}/s burst {burst}  "
        f"achieved {achieved:8.1f}/s ({achieved / rate:6.1%})  "
        f"max in 1 s {most_in(times, 1.0):>5} (allowed {rate + burst})  "
        f"max in 0.1 s {most_in(times, 0.1):>4} (allowed {rate * 0.1 + burst:g})  "
        f"took {span:5.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--pg", help="a postgresql:// URL to measure PostgreSQL too")
    args = parser.parse_args()
    os.environ["WF_BENCH_RATE"], os.environ["WF_BENCH_BURST"] = str(args.rate), str(args.burst)
    n = int(args.rate * args.seconds) + args.burst
    report("memory (1 process)", anyio.run(in_process, n), args.rate, args.burst)
    with temp_dir() as tmp:
        url = store_url("sqlite", tmp)
        times = across_processes(url, n, args.workers)
        report(f"sqlite ({args.workers} processes)", times, args.rate, args.burst)
    if args.pg:
        with fresh_schema(args.pg) as url:
            times = across_processes(url, n, args.workers)
            report(f"postgres ({args.workers} processes)", times, args.rate, args.burst)


if __name__ == "__main__":
    main()
