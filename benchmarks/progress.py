"""What `ctx.progress` costs: end-to-end throughput of short jobs reporting progress every
millisecond, against the same jobs reporting none.

python benchmarks/progress.py --store sqlite
python benchmarks/progress.py --store postgresql://postgres@127.0.0.1/test --workers 4
python benchmarks/progress.py --store sqlite --reports 50 --every 0.001 -n 4000 --repeat 5

Each job sleeps `--every` seconds `--reports` times (about 50 ms by default); with progress, it
calls `ctx.progress` after each sleep, so the worker stores the changes of every running job
once a second (`progress_every`). Runs alternate (without, with, with, without, ...), each on
a fresh store; end to end is from the first enqueue to the last completion the store recorded.
Prints the median of each, and the overhead: from the medians, and the median of the overheads
of each pair of runs (a shared host's speed drifts from minute to minute). The target is under
5 %. The CPU time per job (this process's and the workers', while they drain; not the
database server's) is printed too: it is steadier than throughput on a busy host.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import time
from pathlib import Path
from typing import Any

import anyio
import attrs
from rich.console import Console

from wireframe import Domain, JobContext, JobState, Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.store.postgres import redact

from _common import store_url, temp_dir
from _procs import fresh_schema, worker_processes


@attrs.frozen
class Step:
    n: int
    progress: bool
    reports: int
    every: float


def progress_domain(ran: Any = None, slot: int = 0) -> Domain:
    """The `bench` domain: `step` sleeps `every` seconds `reports` times, reporting progress
    after each sleep if asked; it counts its runs in `ran[slot]` (a list or shared array)."""
    bench = Domain("bench")
    count = 0

    @bench.job
    async def step(job: Step, ctx: JobContext) -> None:
        nonlocal count
        for i in range(1, job.reports + 1):
            await anyio.sleep(job.every)
            if job.progress:
                ctx.progress(i / job.reports, "stepping")
        if ran is not None:
            count += 1
            ran[slot] = count

    return bench


Figures = tuple[float, float]
"""Jobs per second end to end, and CPU microseconds per job."""


async def measure(url: str, args: argparse.Namespace, progress: bool) -> Figures:
    """End-to-end jobs per second, in this process or with `--workers` processes, and the CPU
    they (and this process) used meanwhile, per job."""
    client = Scheduler(url, domains=[progress_domain()], worker=False)
    await client.open()  # creates the schema before any worker starts
    options = {"max_concurrency": args.concurrency, "batch_size": args.batch}
    try:
        if args.workers:
            with worker_processes(url, args.workers, domain=progress_domain, **options) as ran:
                return await _drain(client, args, progress, ran)
        ran = [0]
        local = Scheduler(url, domains=[progress_domain(ran, 0)], **options)
        stop = StopReceiver()
        async with anyio.create_task_group() as tg:
            tg.start_soon(local.run, stop)
            rate = await _drain(client, args, progress, ran)
            stop._request(StopReason(StopReasonKind.REQUESTED))
        return rate
    finally:
        await client.close()


async def _drain(client: Scheduler, args: argparse.Namespace, progress: bool, ran: Any) -> Figures:
    """Enqueue `n` jobs in chunks, wait until all have run and are written."""
    n = args.n
    cpu0 = _cpu()
    t0 = time.time()
    for start in range(0, n, args.chunk):
        stop = min(n, start + args.chunk)
        await client.submit_many(
            [Step(i, progress, args.reports, args.every) for i in range(start, stop)]
        )
    # The handlers count their runs (no query loads the store being measured); then wait for
    # the completions to be written. The end is the last completion time the store recorded.
    while sum(ran) < n:  # noqa: ASYNC110
        await anyio.sleep(0.01)
    while await _completed(client) < n:  # noqa: ASYNC110
        await anyio.sleep(0.05)
    cpu = (_cpu() - cpu0) / n * 1e6
    done = await client.store.list_jobs(states=[JobState.COMPLETED], limit=n)
    return n / (max(job.finished_at or 0.0 for job in done) - t0), cpu


async def _completed(client: Scheduler) -> int:
    counts = await client.store.counts()
    return sum(k for (_, _, state), k in counts.items() if state is JobState.COMPLETED)


def measure_once(args: argparse.Namespace, progress: bool) -> Figures:
    """One run on a fresh store (a new file, or a new PostgreSQL schema)."""
    with temp_dir() as tmp, fresh_schema(store_url(args.store, tmp)) as url:
        return anyio.run(measure, url, args, progress, backend=args.backend)


def _cpu() -> float:
    """CPU seconds used so far by this process and its running worker processes (Linux: read
    from /proc; elsewhere this process only). The database server's CPU is not counted."""
    total = time.process_time()
    tick = os.sysconf("SC_CLK_TCK")
    for child in mp.active_children():
        try:
            fields = Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="sqlite", help="memory, sqlite, or a store URL")
    parser.add_argument("-n", type=int, default=4000, help="jobs per run")
    parser.add_argument("--reports", type=int, default=50, help="sleeps (and reports) per job")
    parser.add_argument("--every", type=float, default=0.001, help="seconds per sleep")
    parser.add_argument("--concurrency", type=int, default=64, help="per worker")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--chunk", type=int, default=1000, help="jobs per enqueue")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument(
        "--workers", type=int, default=0, help="N worker processes (0: run in this process)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs of each kind, alternating")
    args = parser.parse_args()
    console = Console()
    console.print(
        f"[bold]progress[/] store={redact(args.store)} n={args.n} "
        f"workers={args.workers or 'in-process'} concurrency={args.concurrency} "
        f"reports={args.reports} every={args.every * 1000:g} ms backend={args.backend}"
    )
    rates: dict[bool, list[float]] = {False: [], True: []}
    cpus: dict[bool, list[float]] = {False: [], True: []}
    for run in range(max(1, args.repeat)):
        for progress in (False, True) if run % 2 == 0 else (True, False):
            rate, cpu = measure_once(args, progress)
            rates[progress].append(rate)
            cpus[progress].append(cpu)
            kind = "with progress" if progress else "without"
            console.print(
                f"  run {run + 1}, {kind:>13}: {rate:>8,.0f} jobs/s, {cpu:>6,.0f} µs CPU/job"
            )
    report(console, rates, cpus)


def report(console: Console, rates: dict[bool, list[float]], cpus: dict[bool, list[float]]) -> None:
    """The medians, and the overheads: of the medians, and the median of each run's pair."""
    without, with_ = statistics.median(rates[False]), statistics.median(rates[True])
    paired = [1 - w / wo for w, wo in zip(rates[True], rates[False], strict=True)]
    cpu_without, cpu_with = statistics.median(cpus[False]), statistics.median(cpus[True])
    console.print(
        f"  median without progress: {without:>8,.0f} jobs/s, {cpu_without:>6,.0f} µs CPU/job"
    )
    console.print(f"  median with progress:    {with_:>8,.0f} jobs/s, {cpu_with:>6,.0f} µs CPU/job")
    console.print(
        f"  throughput overhead: {100 * (1 - with_ / without):.1f} % of the medians, "
        f"{100 * statistics.median(paired):.1f} % as the median of the pairs (target: under 5 %)"
    )
    console.print(f"  CPU per job: {100 * (cpu_with / cpu_without - 1):+.1f} %")


if __name__ == "__main__":
    main()
