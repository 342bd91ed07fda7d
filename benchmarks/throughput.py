"""Enqueue, drain and end-to-end rates for no-op jobs.

python benchmarks/throughput.py --store sqlite -n 20000 --concurrency 64
python benchmarks/throughput.py --store memory
"""

from __future__ import annotations

import argparse
import time

import anyio
from rich.console import Console

from wireframe import Domain, JobContext, JobState, Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver

from _common import Noop, store_url, temp_dir


async def measure(url: str, n: int, concurrency: int, batch: int) -> dict[str, float]:
    bench = Domain("bench")
    done = anyio.Event()
    count = 0

    @bench.job
    async def noop(job: Noop, ctx: JobContext) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    scheduler = Scheduler(url, domains=[bench], max_concurrency=concurrency, batch_size=batch)
    await scheduler.open()
    t0 = time.perf_counter()
    await scheduler.submit_many([Noop(i) for i in range(n)])
    t1 = time.perf_counter()
    stop = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, stop)
        await done.wait()
        t2 = time.perf_counter()
        while (await scheduler.snapshot()).count(JobState.COMPLETED) < n:  # noqa: ASYNC110
            await anyio.sleep(0.001)  # the last completion batch is being written
        t3 = time.perf_counter()
        stop._request(StopReason(StopReasonKind.REQUESTED))
    return {
        "enqueue": n / (t1 - t0),
        "handlers done": n / (t2 - t1),
        "drain": n / (t3 - t1),
        "end to end": n / (t3 - t0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="sqlite", help="memory, sqlite, or a store URL")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    console = Console()
    with temp_dir() as tmp:
        url = store_url(args.store, tmp)
        rates = anyio.run(measure, url, args.n, args.concurrency, args.batch, backend=args.backend)
    console.print(
        f"[bold]throughput[/] store={args.store} n={args.n} "
        f"concurrency={args.concurrency} backend={args.backend}"
    )
    for name, rate in rates.items():
        console.print(f"  {name:>14}: {rate:>10,.0f} jobs/s")


if __name__ == "__main__":
    main()
