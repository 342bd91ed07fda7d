"""Enqueue-to-start latency with an idle worker (a wake-up, not a poll).

python benchmarks/latency.py --store sqlite -n 1000
python benchmarks/latency.py --store postgresql://postgres@127.0.0.1/test --workers 1 -n 300

With --workers N the workers are other processes (a fresh PostgreSQL schema per run): the delay is
from just before `submit` in this process to the handler's first line in a worker, both read
from the wall clock of this one machine.
"""

from __future__ import annotations

import argparse
import time

import anyio
from rich.console import Console

from wireframe import Domain, JobContext, Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.store.postgres import redact

from _common import Noop, percentile, store_url, temp_dir
from _procs import bench_domain, fresh_schema, worker_processes


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


async def measure_processes(url: str, n: int, workers: int) -> list[float]:
    client = Scheduler(url, domains=[bench_domain()], worker=False)
    await client.open()
    delays: list[float] = []
    try:
        with worker_processes(url, workers, max_concurrency=4):
            for i in range(n + 20):
                t0 = time.time()
                out = await client.submit(Noop(i))
                while True:  # the worker is idle again once this job is done
                    job = await client.get(out.id)
                    if job is not None and job.terminal:
                        break
                    await anyio.sleep(0.002)
                if i >= 20:  # warm-up
                    delays.append(float(job.result or 0) - t0)
    finally:
        await client.close()
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="sqlite", help="memory, sqlite, or a store URL")
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument(
        "--workers", type=int, default=0, help="N worker processes (0: a worker in this process)"
    )
    args = parser.parse_args()
    with temp_dir() as tmp, fresh_schema(store_url(args.store, tmp)) as url:
        if args.workers:
            delays = anyio.run(measure_processes, url, args.n, args.workers, backend=args.backend)
        else:
            delays = anyio.run(measure, url, args.n, backend=args.backend)
    ms = [d * 1000 for d in delays]
    Console().print(
        f"[bold]latency[/] store={redact(args.store)} backend={args.backend} n={args.n} "
        f"workers={args.workers or 'in-process'}: "
        f"enqueue-to-start p50 {percentile(ms, 50):.3f} ms, p99 {percentile(ms, 99):.3f} ms, "
        f"max {max(ms):.3f} ms"
    )


if __name__ == "__main__":
    main()
