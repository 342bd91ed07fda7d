"""Worker processes for the cross-process benchmarks, and a throwaway PostgreSQL schema."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event
from typing import Any

import anyio
import anyio.to_thread

from wireframe import Domain, JobContext, Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver

from _common import Noop


def bench_domain(ran: Any = None, slot: int = 0) -> Domain:
    """The `bench` domain: a no-op job returning the time it started (epoch seconds).

    With `ran` (a shared array), the handler counts its runs in `ran[slot]`, so the benchmark
    can wait without querying the database it measures.
    """
    bench = Domain("bench")
    count = 0

    @bench.job
    async def noop(job: Noop, ctx: JobContext) -> float:
        nonlocal count
        if ran is not None:
            count += 1
            ran[slot] = count
        return time.time()

    return bench


DomainFactory = Callable[[Any, int], Domain]
"""`(ran, slot) -> Domain`, like `bench_domain`: a module-level function (it is pickled)."""


async def _serve(
    url: str,
    options: dict[str, Any],
    ready: Event,
    stop: Event,
    ran: Any,
    slot: int,
    domain: DomainFactory,
) -> None:
    scheduler = Scheduler(url, domains=[domain(ran, slot)], **options)
    await scheduler.open()
    receiver = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, receiver)
        ready.set()
        await anyio.to_thread.run_sync(stop.wait)
        receiver._request(StopReason(StopReasonKind.REQUESTED))
    await scheduler.close()


def _worker_main(
    url: str,
    options: dict[str, Any],
    ready: Event,
    stop: Event,
    ran: Any,
    slot: int,
    domain: DomainFactory,
) -> None:
    anyio.run(_serve, url, options, ready, stop, ran, slot, domain)


@contextmanager
def worker_processes(
    url: str, n: int, *, domain: DomainFactory = bench_domain, **options: Any
) -> Iterator[Any]:
    """Run `n` worker processes on `url` (ready when entered); stop them on exit.

    Each runs the domain `domain(ran, slot)` builds (default: `bench_domain`). Yields a shared
    array: element i counts the jobs worker i has run (`sum()` it).
    """
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    ran = ctx.Array("q", n, lock=False)
    readies = [ctx.Event() for _ in range(n)]
    procs = [
        ctx.Process(target=_worker_main, args=(url, options, r, stop, ran, i, domain), daemon=True)
        for i, r in enumerate(readies)
    ]
    for p in procs:
        p.start()
    try:
        for r, p in zip(readies, procs, strict=True):
            while not r.wait(0.1):
                if not p.is_alive():
                    raise RuntimeError(f"a worker process exited with code {p.exitcode}")
        yield ran
    finally:
        stop.set()
        for p in procs:
            p.join(10)
            if p.is_alive():
                p.kill()


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """For a postgresql:// URL, the URL of a new schema, dropped afterwards; else `url`."""
    if not url.startswith(("postgresql://", "postgres://")):
        yield url
        return
    import psycopg

    from wireframe.store.postgres import parse_url

    name = f"bench_{uuid.uuid4().hex[:12]}"
    conninfo, _ = parse_url(url, None)
    sep = "&" if "?" in url else "?"
    try:
        yield f"{url}{sep}schema={name}"
    finally:
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
