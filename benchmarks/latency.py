"""Enqueue-to-start latency with an idle worker in the same process (a wake-up, not a poll).

python benchmarks/latency.py --store sqlite -n 1000
"""

from __future__ import annotations

import argparse
import time

import anyio
from rich.console import Console

from wireframe import Domain, JobContext, Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver

from _common import Noop, percentile, store_url, temp_dir


async def measure(url: str, n: int) -> list[float]:
    bench = Domain("bench")
    started: dict[int, float] = {}

    @bench.job
    async def noop(job: Noop, ctx: JobContext) -> None:
        started[job.n] = time.perf_counter()

    scheduler = Scheduler(url, domains=[bench], max_concurrency=4, poll_interval=5.0)
    stop = StopReceiver()
    delays: list[float] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, stop)
        await scheduler.open()
        for i in range(n + 20):
            t0 = time.perf_counter()
            out = await scheduler.submit(Noop(i))
            await scheduler.result(out.id, timeout=10)
            if i >= 20:  # warm-up
                delays.append(started[i] - t0)
        stop._request(StopReason(StopReasonKind.REQUESTED))
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="sqlite", help="memory, sqlite, or a store URL")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    with temp_dir() as tmp:
        delays = anyio.run(measure, store_url(args.store, tmp), args.n, backend=args.backend)
    ms = [d * 1000 for d in delays]
    Console().print(
        f"[bold]latency[/] store={args.store} backend={args.backend} n={args.n}: "
        f"enqueue-to-start p50 {percentile(ms, 50):.3f} ms, p99 {percentile(ms, 99):.3f} ms, "
        f"max {max(ms):.3f} ms"
    )


if __name__ == "__main__":
    main()
