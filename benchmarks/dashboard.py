"""The dashboard's costs: how fast the jobs list answers on a million jobs, and what an open
dashboard costs the store's throughput.

python benchmarks/dashboard.py list --store sqlite -n 1000000
python benchmarks/dashboard.py list --store postgresql://postgres@127.0.0.1/test -n 1000000
python benchmarks/dashboard.py cost --store sqlite -n 20000 --repeat 3
python benchmarks/dashboard.py cost --store postgresql://postgres@127.0.0.1/test -n 10000

`list` fills a fresh store with N jobs (direct SQL, for the set-up only: ten types in five
domains, mostly completed, some failed, pending, scheduled and cancelled, a tenth tagged),
then times the jobs page over HTTP (a DashboardServer in this process, answered as the
browser asks for it): the first page, filtered pages, a deep keyset page and searches.

`cost` runs no-op jobs through an in-process Scheduler (submit N, drain them) with no
dashboard, then with a dashboard open on the same store in another process (its event stream
followed and its pages reloaded on every tick, as the browser's script does), alternately,
`--repeat` times each; it prints both rates and the dashboard's own time spent in the store.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
from rich.console import Console

from wireframe import Domain, JobContext, Scheduler
from wireframe.dashboard import DashboardServer
from wireframe.dashboard.sampler import BUDGET
from wireframe.service import Service
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.store import Store, store_from_url

sys.path.insert(0, str(Path(__file__).parent))
from _common import Noop, percentile, store_url, temp_dir
from _procs import fresh_schema

console = Console(highlight=False, width=200)

DOMAINS = ("media", "mail", "reports", "billing", "search")
STATES = (
    ("completed", 0.89),
    ("failed", 0.04),
    ("pending", 0.03),
    ("scheduled", 0.02),
    ("cancelled", 0.02),
)
COLUMNS = (
    "type, domain, payload, state, priority, base_priority, tags, created_at, run_at, ready_at, "
    "finished_at, max_attempts, retry_budget, on_dep_failure, fail_fast, error, attempt"
)


# -- list: a million jobs ---------------------------------------------------------------------


def rows(n: int, seed: int = 7) -> Iterator[tuple[Any, ...]]:
    """N job rows, oldest first."""
    rng = random.Random(seed)
    names = [s for s, _ in STATES]
    weights = [w for _, w in STATES]
    start = time.time() - n * 0.01
    for i in range(n):
        domain = DOMAINS[i % len(DOMAINS)]
        state = rng.choices(names, weights)[0]
        created = start + i * 0.01
        payload = json.dumps({"user": f"user{rng.randrange(100_000)}", "n": i})
        tags = json.dumps(["vip"]) if i % 10 == 0 else None
        ended = state in ("completed", "failed", "cancelled")
        error = (
            f"TimeoutError: upstream {rng.randrange(50)} timed out" if state == "failed" else None
        )
        yield (
            f"{domain}::{'a' if i % 2 else 'b'}",
            domain,
            payload,
            state,
            10,
            10,
            tags,
            created,
            created + (3600 if state == "scheduled" else 0),
            created,
            created + 1 if ended else None,
            1,
            1,
            "cancel",
            1,
            error,
            1 if ended else 0,
        )


def fill_sqlite(path: str, n: int) -> None:
    import sqlite3

    conn = sqlite3.connect(path)
    marks = ",".join("?" * len(COLUMNS.split(",")))
    with conn:
        conn.executemany(f"INSERT INTO jobs ({COLUMNS}) VALUES ({marks})", rows(n))
    conn.execute("ANALYZE")
    conn.close()


def fill_postgres(url: str, n: int) -> None:
    import psycopg

    from wireframe.store.postgres import parse_url

    conninfo, schema = parse_url(url, None)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        with conn.cursor() as cur, cur.copy(f"COPY jobs ({COLUMNS}) FROM STDIN") as copy:
            for row in rows(n):
                copy.write_row(row)
        conn.execute("ANALYZE jobs")


QUERIES = (
    ("first page", "/jobs"),
    ("state=failed", "/jobs?state=failed"),
    ("state=pending", "/jobs?state=pending"),
    ("domain=mail", "/jobs?domain=mail"),
    ("domain+state", "/jobs?domain=mail&state=failed"),
    ("type", "/jobs?type=reports::a"),
    ("deep keyset page", "/jobs?before={deep}"),
    ("deep, state=failed", "/jobs?state=failed&before={deep}"),
    ("tag=vip (search)", "/jobs?tag=vip"),
    ("text (search)", "/jobs?q=user4242"),
    ("overview", "/"),
)


async def time_pages(url: str, n: int, repeat: int) -> None:
    store = store_from_url(url)
    server = DashboardServer(store, port=0, interval=2.0)
    service = Service(name="bench", handle_signals=False)
    service.add_task(server)
    await store.open()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            port = await server.started()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for name, path in QUERIES:
                    target = path.format(deep=n // 100)
                    await client.get(target)  # warm
                    took = []
                    for _ in range(repeat):
                        t0 = time.perf_counter()
                        answer = await client.get(target)
                        took.append((time.perf_counter() - t0) * 1000)
                        assert answer.status_code == 200, (target, answer.text[:200])
                    shown = answer.text.count("<tr data-job=")
                    console.print(
                        f"  {name:>20}: median {statistics.median(took):7.1f} ms, "
                        f"p95 {percentile(took, 95):7.1f} ms, max {max(took):7.1f} ms "
                        f"({shown} jobs shown)"
                    )
                ticks, counts = [], []
                for _ in range(5):
                    t0 = time.perf_counter()
                    await store.activity(time.time() - 2)
                    await store.workers()
                    await store.schedules()
                    ticks.append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    await store.active_counts()
                    counts.append(time.perf_counter() - t0)
                tick, count = statistics.median(ticks), statistics.median(counts)
                console.print(
                    f"  {'live tick':>20}: median {tick * 1000:7.1f} ms (every 2 s: "
                    f"{tick / 2:.2%} of the store's time)"
                )
                console.print(
                    f"  {'active counts':>20}: median {count * 1000:7.1f} ms (within the 1 % "
                    f"budget: at most every {max(2.0, count / BUDGET):.0f} s)"
                )
            service.stop("done")
    finally:
        await store.close()


def run_list(args: argparse.Namespace) -> None:
    with temp_dir() as tmp, fresh_schema(store_url(args.store, tmp)) as url:
        anyio.run(_create, url)
        t0 = time.perf_counter()
        if url.startswith("sqlite:///"):
            fill_sqlite(url.removeprefix("sqlite:///"), args.n)
        else:
            fill_postgres(url, args.n)
        console.print(f"  filled {args.n:,} jobs in {time.perf_counter() - t0:.1f} s")
        anyio.run(time_pages, url, args.n, args.repeat)


async def _create(url: str) -> None:
    store = store_from_url(url)
    await store.open()
    await store.close()


# -- cost: throughput with and without an open dashboard --------------------------------------


class TimedStore:
    """A store whose every call is timed: the dashboard's share of the store's time."""

    def __init__(self, inner: Store) -> None:
        self._inner = inner
        self.busy = 0.0
        self.calls = 0

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in ("open", "close") or not callable(attr):
            return attr

        async def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            finally:
                self.busy += time.perf_counter() - t0
                self.calls += 1

        return timed


async def browse(url: str, ready: Any, go: Any, stop: Any, report: Any) -> None:
    """A dashboard and a browser-like client on it: the event stream, and the pages reloaded
    on every tick (the jobs list and the overview)."""
    timed = TimedStore(store_from_url(url, create=False))
    await timed.open()
    server = DashboardServer(timed, port=0)  # type: ignore[arg-type]
    service = Service(name="dashboard", handle_signals=False)
    service.add_task(server)
    reloads = 0
    elapsed = cpu = 0.0
    async with anyio.create_task_group() as tg:
        tg.start_soon(service.run)
        port = await server.started()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=None) as client:

            async def follow() -> None:
                nonlocal reloads
                async with client.stream("GET", "/events") as events:
                    async for line in events.aiter_lines():
                        if line.startswith("data:"):
                            await client.get("/jobs?partial=1")
                            await client.get("/?partial=1")
                            reloads += 1

            tg.start_soon(follow)
            ready.set()
            while not go.is_set():  # noqa: ASYNC110
                await anyio.sleep(0.01)
            timed.busy, timed.calls, reloads = 0.0, 0, 0  # count the drain only
            t0, cpu0 = time.perf_counter(), time.process_time()
            while not stop.is_set():  # noqa: ASYNC110
                await anyio.sleep(0.01)
            elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            tg.cancel_scope.cancel()
    await timed.close()
    figures = {"busy": timed.busy, "calls": timed.calls, "elapsed": elapsed, "cpu": cpu}
    report.put({**figures, "reloads": reloads})


def _browse_process(url: str, ready: Any, go: Any, stop: Any, report: Any) -> None:
    anyio.run(browse, url, ready, go, stop, report)


async def drain(url: str, n: int) -> float:
    """Submit N no-op jobs and run them; jobs per second from the first submit to the end."""
    bench = Domain("bench")
    done = anyio.Event()
    count = 0

    @bench.job
    async def noop(job: Noop, ctx: JobContext) -> None:
        nonlocal count
        count += 1
        if count == n:
            done.set()

    scheduler = Scheduler(url, domains=[bench], max_concurrency=64, batch_size=64)
    await scheduler.open()
    stop = StopReceiver()
    t0 = time.perf_counter()
    await scheduler.submit_many([Noop(i) for i in range(n)])
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, stop)
        await done.wait()
        t1 = time.perf_counter()
        stop._request(StopReason(StopReasonKind.REQUESTED))
    return n / (t1 - t0)


def measure_cost(url: str, n: int, with_dashboard: bool) -> tuple[float, dict[str, float] | None]:
    anyio.run(_create, url)
    if not with_dashboard:
        return anyio.run(drain, url, n), None
    ctx = multiprocessing.get_context("spawn")
    ready, go, stop, report = ctx.Event(), ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_browse_process, args=(url, ready, go, stop, report))
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError("the dashboard process did not start")
        go.set()
        rate = anyio.run(drain, url, n)
    finally:
        stop.set()
    figures: dict[str, float] = report.get(timeout=60)
    proc.join(30)
    return rate, figures


def run_cost(args: argparse.Namespace) -> None:
    plain: list[float] = []
    watched: list[float] = []
    shares: list[float] = []
    for run in range(args.repeat):
        for with_dashboard in (False, True):
            with temp_dir() as tmp, fresh_schema(store_url(args.store, tmp)) as url:
                rate, figures = measure_cost(url, args.n, with_dashboard)
            (watched if with_dashboard else plain).append(rate)
            how = "dashboard open" if with_dashboard else "no dashboard"
            line = f"  run {run + 1}, {how}: {rate:,.0f} jobs/s"
            if figures:
                share = figures["busy"] / figures["elapsed"]
                shares.append(share)
                line += (
                    f"  (dashboard: {figures['calls']:.0f} store calls, "
                    f"{figures['busy'] * 1000:.0f} ms in the store over {figures['elapsed']:.1f} s "
                    f"= {share:.2%}; {figures['reloads']:.0f} page reloads; its process used "
                    f"{figures['cpu']:.2f} s of CPU)"
                )
            console.print(line)
    a, b = statistics.median(plain), statistics.median(watched)
    console.print(
        f"  median: {a:,.0f} jobs/s without, {b:,.0f} with a dashboard open "
        f"({(b - a) / a:+.1%}); the dashboard's time in the store: "
        f"median {statistics.median(shares):.2%} of wall time"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["list", "cost"])
    parser.add_argument("--store", default="sqlite", help="sqlite, or a postgresql:// URL")
    parser.add_argument("-n", type=int, default=None, help="jobs (list: 1,000,000; cost: 20,000)")
    parser.add_argument("--repeat", type=int, default=None, help="list: 20 requests; cost: 3 runs")
    args = parser.parse_args()
    from wireframe.dashboard.security import safe_url

    if args.what == "list":
        args.n = args.n or 1_000_000
        args.repeat = args.repeat or 20
        console.print(f"[bold]dashboard jobs list[/] store={safe_url(args.store)} jobs={args.n:,}")
        run_list(args)
    else:
        args.n = args.n or 20_000
        args.repeat = args.repeat or 3
        console.print(
            f"[bold]dashboard cost[/] store={safe_url(args.store)} jobs per run={args.n:,}"
        )
        run_cost(args)


if __name__ == "__main__":
    main()
