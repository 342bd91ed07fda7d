"""Durable steps on SQLite: steps/s for one job of N no-op steps, replay time, checkpoint p50.

python benchmarks/durable.py -n 1000
"""

from __future__ import annotations

import argparse
import time

import anyio
from rich.console import Console

from wireframe import Domain, JobContext, Retry, Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver

from _common import Noop, percentile, store_url, temp_dir


async def measure(url: str, n: int) -> dict[str, float]:
    bench = Domain("bench")
    timings: dict[str, float] = {}
    step_times: list[float] = []

    @bench.job(retry=Retry.fixed(attempts=2, delay=0))
    async def many_steps(job: Noop, ctx: JobContext) -> int:
        t0 = time.perf_counter()
        for i in range(n):
            s0 = time.perf_counter()
            await ctx.step("noop", lambda i: i, i)
            step_times.append(time.perf_counter() - s0)
        elapsed = time.perf_counter() - t0
        if ctx.job.attempt == 1:
            timings["first run"] = elapsed
            raise RuntimeError("fail once so the second attempt replays every step")
        timings["replay"] = elapsed
        return n

    scheduler = Scheduler(url, domains=[bench])
    stop = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, stop)
        await scheduler.open()
        out = await scheduler.submit(Noop(0))
        await scheduler.result(out.id, timeout=600)
        stop._request(StopReason(StopReasonKind.REQUESTED))
    writes = step_times[:n]
    return {
        "steps/s (recording)": n / timings["first run"],
        "replay of all steps (ms)": timings["replay"] * 1000,
        "checkpoint write p50 (ms)": percentile([w * 1000 for w in writes], 50),
        "checkpoint write p99 (ms)": percentile([w * 1000 for w in writes], 99),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    args = parser.parse_args()
    with temp_dir() as tmp:
        figures = anyio.run(measure, store_url(args.store, tmp), args.n, backend=args.backend)
    console = Console()
    console.print(f"[bold]durable[/] store={args.store} steps={args.n} backend={args.backend}")
    for name, value in figures.items():
        console.print(f"  {name:>26}: {value:>10,.2f}")


if __name__ == "__main__":
    main()
