"""Start and stop a service of many trivial tasks; print start, stop and wake-up figures.

Run: python benchmarks/service_lifecycle.py [--tasks 10000] [--backend asyncio|trio|both]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import anyio

from wireframe.service import Service, StopReceiver, Task


class Sleeper(Task):
    """A trivial task: wait for stop, record when it woke."""

    def __init__(self, id: str, bench: Bench) -> None:
        self.id = id
        self.bench = bench

    async def run(self, stop: StopReceiver) -> None:
        bench = self.bench
        bench.running += 1
        if bench.running == bench.n:
            bench.all_running_at = time.perf_counter()
            bench.all_running.set()
        await stop.wait()
        bench.woke.append(time.perf_counter())


class Bench:
    def __init__(self, n: int) -> None:
        self.n = n
        self.running = 0
        self.all_running = anyio.Event()
        self.all_running_at = 0.0
        self.woke: list[float] = []


async def measure(n: int) -> dict[str, float]:
    bench = Bench(n)
    service = Service("bench", handle_signals=False)
    for i in range(n):
        service.add_task(Sleeper(f"t{i}", bench))
    returned_at = 0.0
    stop_at = 0.0

    async def run() -> None:
        nonlocal returned_at
        await service.run()
        returned_at = time.perf_counter()

    async with anyio.create_task_group() as tg:
        t0 = time.perf_counter()
        tg.start_soon(run)
        await bench.all_running.wait()
        stop_at = time.perf_counter()
        service.stop("benchmark")
    delays = sorted(w - stop_at for w in bench.woke)
    assert len(delays) == n
    return {
        "start": bench.all_running_at - t0,
        "stop": returned_at - stop_at,
        "p50": statistics.quantiles(delays, n=100)[49],
        "p99": statistics.quantiles(delays, n=100)[98],
    }


async def floor(n: int) -> dict[str, float]:
    """The same wake-up with bare anyio (no service): the floor the framework adds to."""
    event = anyio.Event()
    woke: list[float] = []
    ready = anyio.Event()
    started = 0

    async def waiter() -> None:
        nonlocal started
        started += 1
        if started == n:
            ready.set()
        await event.wait()
        woke.append(time.perf_counter())

    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(waiter)
        await ready.wait()
        stop_at = time.perf_counter()
        event.set()
    quantiles = statistics.quantiles(sorted(w - stop_at for w in woke), n=100)
    return {"p50": quantiles[49], "p99": quantiles[98]}


async def raw_floor(n: int) -> dict[str, float]:
    """The wake-up with no library at all: asyncio tasks awaiting one shared Future."""
    loop = asyncio.get_running_loop()
    gate = loop.create_future()
    woke: list[float] = []

    async def waiter() -> None:
        await gate
        woke.append(time.perf_counter())

    tasks = [loop.create_task(waiter()) for _ in range(n)]
    await asyncio.sleep(0.05)  # every task is parked on the future
    stop_at = time.perf_counter()
    gate.set_result(None)
    await asyncio.gather(*tasks)
    quantiles = statistics.quantiles(sorted(w - stop_at for w in woke), n=100)
    return {"p50": quantiles[49], "p99": quantiles[98]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="runs per backend; best is shown")
    args = parser.parse_args()
    backends = ["asyncio", "trio"] if args.backend == "both" else [args.backend]
    print(f"service of {args.tasks} tasks, best of {args.repeat} runs")
    for backend in backends:
        runs = [anyio.run(measure, args.tasks, backend=backend) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["start"] + r["stop"])
        print(
            f"{backend:8} all running {best['start'] * 1e3:7.1f} ms | "
            f"stop() -> run() returned {best['stop'] * 1e3:7.1f} ms | "
            f"start+stop {(best['start'] + best['stop']) * 1e3:7.1f} ms | "
            f"wake-up p50 {best['p50'] * 1e3:6.2f} ms, p99 {best['p99'] * 1e3:6.2f} ms"
        )
        bare = min(
            (anyio.run(floor, args.tasks, backend=backend) for _ in range(args.repeat)),
            key=lambda r: r["p99"],
        )
        print(
            f"{'':8} floor: bare anyio.Event, {args.tasks} waiters: "
            f"wake-up p50 {bare['p50'] * 1e3:6.2f} ms, p99 {bare['p99'] * 1e3:6.2f} ms"
        )
        if backend == "asyncio":
            raw = min(
                (asyncio.run(raw_floor(args.tasks)) for _ in range(args.repeat)),
                key=lambda r: r["p99"],
            )
            print(
                f"{'':8} floor: bare asyncio, one Future, {args.tasks} tasks, no anyio: "
                f"wake-up p50 {raw['p50'] * 1e3:6.2f} ms, p99 {raw['p99'] * 1e3:6.2f} ms"
            )


if __name__ == "__main__":
    main()
