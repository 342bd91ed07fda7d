"""Enqueue, drain and end-to-end rates for no-op jobs.

python benchmarks/throughput.py --store sqlite -n 20000 --concurrency 64
python benchmarks/throughput.py --store memory
python benchmarks/throughput.py --store memory --middleware noop   # or otel (wireframe[otel])
python benchmarks/throughput.py --store postgresql://postgres@127.0.0.1/test --workers 4
python benchmarks/throughput.py --store postgresql://postgres@127.0.0.1/test --workers 4 --repeat 5

With --workers N, N worker processes drain the store while this process enqueues (in
transactions of --chunk jobs): end to end is from the first enqueue to the last completion.
--repeat K runs K times, each on a fresh store, and prints the median, min and max: a shared
host's speed varies from minute to minute.
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio
from rich.console import Console

from wireframe import (
    AttemptOutcome,
    Domain,
    JobContext,
    JobState,
    Middleware,
    Scheduler,
    Submission,
)
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver

from _common import Noop, store_url, temp_dir
from _procs import bench_domain, fresh_schema, worker_processes


async def measure(
    url: str, n: int, concurrency: int, batch: int, middleware: str = "none"
) -> dict[str, float]:
    bench = Domain("bench")
    done = anyio.Event()
    count = 0

    @bench.job
    async def noop(job: Noop, ctx: JobContext) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    scheduler = Scheduler(
        url,
        domains=[bench],
        max_concurrency=concurrency,
        batch_size=batch,
        middleware=bench_middleware(middleware),
    )
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


async def measure_processes(
    url: str, n: int, workers: int, concurrency: int, batch: int, chunk: int
) -> dict[str, float]:
    client = Scheduler(url, domains=[bench_domain()], worker=False)
    await client.open()  # creates the schema before the workers start
    try:
        with worker_processes(url, workers, max_concurrency=concurrency, batch_size=batch) as ran:
            t0 = time.time()
            for start in range(0, n, chunk):
                await client.submit_many([Noop(i) for i in range(start, min(n, start + chunk))])
            t1 = time.time()
            # Waiting must not load the database being measured: the workers count the jobs
            # they run in shared memory; once all have run, wait for their completions to be
            # written (counting scans the table, so only then). The end is the last
            # completion time the store recorded.
            while sum(ran) < n:  # noqa: ASYNC110
                await anyio.sleep(0.01)
            while await completed(client) < n:  # noqa: ASYNC110
                await anyio.sleep(0.05)
            done = await client.store.list_jobs(states=[JobState.COMPLETED], limit=n)
            t2 = max(job.finished_at or 0.0 for job in done)
    finally:
        await client.close()
    return {"enqueue": n / (t1 - t0), "end to end": n / (t2 - t0)}


async def completed(client: Scheduler) -> int:
    """How many jobs have completed (a count over the whole table)."""
    counts = await client.store.counts()
    return sum(k for (_, _, state), k in counts.items() if state is JobState.COMPLETED)


class NoopMiddleware(Middleware):
    """Every hook, doing nothing: the cost of the middleware machinery itself."""

    async def before_submit(self, submission: Submission) -> None:
        pass

    async def after_submit(self, submission: Submission) -> None:
        pass

    async def before_attempt(self, ctx: JobContext) -> None:
        pass

    async def after_attempt(self, ctx: JobContext, outcome: AttemptOutcome) -> None:
        pass


def bench_middleware(kind: str) -> list[Middleware]:
    """The middleware `--middleware` names: none, noop, or otel (spans, no exporter)."""
    if kind == "noop":
        return [NoopMiddleware()]
    if kind == "otel":
        from opentelemetry.sdk.trace import TracerProvider

        from wireframe.otel import TracingMiddleware

        return [TracingMiddleware(tracer_provider=TracerProvider())]
    return []


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--store", default="sqlite", help="memory, sqlite, or a store URL")
    parser.add_argument("-n", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument(
        "--workers", type=int, default=0, help="N worker processes (0: run in this process)"
    )
    parser.add_argument("--chunk", type=int, default=1000, help="jobs per enqueue (--workers)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs, each on a fresh store; prints every run"
    )
    parser.add_argument(
        "--middleware",
        default="none",
        choices=["none", "noop", "otel"],
        help="middleware of the in-process scheduler: none, noop hooks, or otel spans",
    )
    args = parser.parse_args()
    console = Console()
    console.print(
        f"[bold]throughput[/] store={_safe(args.store)} n={args.n} "
        f"workers={args.workers or 'in-process'} "
        f"concurrency={args.concurrency} batch={args.batch} backend={args.backend}"
        + (f" middleware={args.middleware}" if args.middleware != "none" else "")
    )
    runs: list[float] = []
    for run in range(max(1, args.repeat)):
        if args.repeat > 1:
            console.print(f"run {run + 1} of {args.repeat}")
        rates = measure_once(args)
        for name, rate in rates.items():
            console.print(f"  {name:>14}: {rate:>10,.0f} jobs/s")
        runs.append(rates["end to end"])
    if len(runs) > 1:
        console.print(
            f"  end to end over {len(runs)} runs: median {statistics.median(runs):,.0f}, "
            f"min {min(runs):,.0f}, max {max(runs):,.0f} jobs/s"
        )


def measure_once(args: argparse.Namespace) -> dict[str, float]:
    """One measurement on a fresh store (a new file, or a new PostgreSQL schema)."""
    with temp_dir() as tmp, fresh_schema(store_url(args.store, tmp)) as url:
        if args.workers:
            return anyio.run(
                measure_processes,
                url,
                args.n,
                args.workers,
                args.concurrency,
                args.batch,
                args.chunk,
                backend=args.backend,
            )
        return anyio.run(
            measure,
            url,
            args.n,
            args.concurrency,
            args.batch,
            args.middleware,
            backend=args.backend,
        )


def _safe(url: str) -> str:
    from wireframe.store.postgres import redact

    return redact(url)


if __name__ == "__main__":
    main()
