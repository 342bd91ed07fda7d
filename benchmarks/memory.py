"""Process memory while 200,000 no-op jobs flow through one scheduler, in rounds.

    python benchmarks/memory.py --store sqlite -n 200000 --rounds 4
    python benchmarks/memory.py --store memory --prune

RSS should stay flat from round to round: the scheduler keeps nothing per finished job in
memory. History rows live in the store: on disk for SQLite, in the process for memory://, where
RSS grows by the history alone; with --prune, ended jobs are pruned after each round and RSS
stays flat on every store.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

import anyio
from rich.console import Console

from wireframe import Domain, JobContext, JobState, Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver

from _common import Noop, store_url, temp_dir


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def measure(url: str, n: int, rounds: int, prune: bool, console: Console) -> None:
    bench = Domain("bench")
    count = 0
    target = 0
    done = anyio.Event()

    @bench.job
    async def noop(job: Noop, ctx: JobContext) -> None:
        nonlocal count
        count += 1
        if count == target:
            done.set()

    scheduler = Scheduler(url, domains=[bench], max_concurrency=64)
    stop = StopReceiver()
    per_round = n // rounds
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, stop)
        await scheduler.open()
        for r in range(rounds):
            target += per_round
            done = anyio.Event()
            t0 = time.perf_counter()
            for start in range(0, per_round, 10_000):
                await scheduler.submit_many(
                    [Noop(i) for i in range(start, min(per_round, start + 10_000))]
                )
            await done.wait()
            if prune:
                # the last completions are still being written; earlier rounds were pruned
                while (await scheduler.snapshot()).count(JobState.COMPLETED) < per_round:  # noqa: ASYNC110
                    await anyio.sleep(0.01)
                await scheduler.store.prune(time.time() + 1)
            gc.collect()
            console.print(
                f"  round {r + 1}: {target:>8,} jobs done, "
                f"{per_round / (time.perf_counter() - t0):>8,.0f} jobs/s, "
                f"RSS {rss_mb():7.1f} MiB"
            )
        stop._request(StopReason(StopReasonKind.REQUESTED))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("-n", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--prune", action="store_true", help="prune ended jobs after each round")
    args = parser.parse_args()
    console = Console()
    console.print(f"[bold]memory[/] store={args.store} n={args.n}; RSS at start {rss_mb():.1f} MiB")
    with temp_dir() as tmp:
        anyio.run(measure, store_url(args.store, tmp), args.n, args.rounds, args.prune, console)


if __name__ == "__main__":
    main()
