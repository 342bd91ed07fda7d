"""Service lifecycle figures: start, stop and wake-up of many tasks; supervised restarts;
the idle cost of the systemd notifier (watchdog pings).

Run: python benchmarks/service_lifecycle.py [--tasks 10000] [--backend asyncio|trio|both]
     [--restart-tasks 1000] [--idle-seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import socket
import statistics
import tempfile
import threading
import time

import anyio

from wireframe.service import Backoff, Restart, Service, StopReceiver, Task


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


class FailsOnce(Task):
    """Fails its first run; its second run records how late it began and waits for stop."""

    def __init__(self, id: str, bench: RestartBench) -> None:
        super().__init__(restart=Restart.on_failure(bench.backoff))
        self.id = id
        self.bench = bench
        self.failed_at = 0.0

    async def run(self, stop: StopReceiver) -> None:
        bench = self.bench
        now = time.perf_counter()
        if not self.failed_at:
            self.failed_at = now
            raise RuntimeError("first run fails")
        bench.late.append(now - self.failed_at - bench.backoff.initial)
        if len(bench.late) == bench.n:
            bench.all_back_at = now
            bench.all_back.set()
        await stop.wait()


class RestartBench:
    def __init__(self, n: int, backoff: Backoff) -> None:
        self.n = n
        self.backoff = backoff
        self.late: list[float] = []
        self.all_back = anyio.Event()
        self.all_back_at = 0.0


async def measure_restarts(n: int, jitter: float) -> dict[str, float]:
    """``n`` supervised tasks fail once at start; time until every one runs again."""
    bench = RestartBench(n, Backoff(jitter=jitter))
    service = Service("bench", handle_signals=False)
    for i in range(n):
        service.add_task(FailsOnce(f"t{i}", bench))
    async with anyio.create_task_group() as tg:
        t0 = time.perf_counter()
        tg.start_soon(service.run)
        await bench.all_back.wait()
        service.stop("benchmark")
    late = sorted(bench.late)
    return {
        "all_back": bench.all_back_at - t0,
        "late_p50": statistics.median(late),
        "late_max": late[-1],
    }


async def idle_cpu(seconds: float, watchdog: float | None) -> float:
    """CPU seconds per second of an idle one-task service, with or without systemd's socket."""
    service = Service("bench", handle_signals=False)
    service.add_task(Task.from_fn("idle", _idle))
    with tempfile.TemporaryDirectory() as tmp, _notify_env(tmp, watchdog):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            await anyio.sleep(0.2)  # past the start
            cpu0, t0 = time.process_time(), time.perf_counter()
            await anyio.sleep(seconds)
            cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
            service.stop("benchmark")
    return cpu / wall


async def _idle(stop: StopReceiver) -> None:
    await stop.wait()


class _notify_env:
    """Point NOTIFY_SOCKET (and WATCHDOG_USEC) at a datagram socket read by a thread, as
    systemd would read it (its CPU is counted too: it is small next to the service's)."""

    def __init__(self, tmp: str, watchdog: float | None) -> None:
        self.path = os.path.join(tmp, "notify.sock")
        self.watchdog = watchdog
        self.sock: socket.socket | None = None

    def __enter__(self) -> None:
        if self.watchdog is None:
            return
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        # systemd reads every datagram; a socket nobody reads fills (max_dgram_qlen is 10).
        threading.Thread(target=self._drain, args=(self.sock,), daemon=True).start()
        os.environ["NOTIFY_SOCKET"] = self.path
        os.environ["WATCHDOG_USEC"] = str(int(self.watchdog * 1e6))

    @staticmethod
    def _drain(sock: socket.socket) -> None:
        try:
            while sock.recv(4096):
                pass
        except OSError:  # closed
            pass

    def __exit__(self, *exc: object) -> None:
        os.environ.pop("NOTIFY_SOCKET", None)
        os.environ.pop("WATCHDOG_USEC", None)
        if self.sock is not None:
            self.sock.close()


def report_restarts(backend: str, n: int, repeat: int) -> None:
    # Each failure is logged at WARNING with its traceback; that is the application's
    # logging, not the restart machinery, so it is switched off for this measurement.
    logging.getLogger("wireframe.service").setLevel(logging.ERROR)
    for jitter in (0.0, 0.2):
        runs = [anyio.run(measure_restarts, n, jitter, backend=backend) for _ in range(repeat)]
        best = min(runs, key=lambda r: r["all_back"])
        print(
            f"{backend:8} {n} supervised tasks fail once (backoff 0.5 s, jitter {jitter:g}): "
            f"all running again after {best['all_back'] * 1e3:7.1f} ms"
            + (
                ""
                if jitter
                else f" | restart later than its backoff: median "
                f"{best['late_p50'] * 1e3:6.2f} ms, max {best['late_max'] * 1e3:6.2f} ms"
            )
        )
    logging.getLogger("wireframe.service").setLevel(logging.NOTSET)


def report_idle(backend: str, seconds: float) -> None:
    for label, watchdog in (
        ("no NOTIFY_SOCKET", None),
        ("systemd, WatchdogSec=30", 30.0),
        ("systemd, WatchdogSec=1", 1.0),
    ):
        share = anyio.run(idle_cpu, seconds, watchdog, backend=backend)
        print(
            f"{backend:8} idle service, {label:24}: {share * 1e6:7.1f} us CPU per second "
            f"({share * 100:.4f} % of one core)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--backend", choices=["asyncio", "trio", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=3, help="runs per backend; best is shown")
    parser.add_argument("--restart-tasks", type=int, default=1_000)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
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
        report_restarts(backend, args.restart_tasks, args.repeat)
        report_idle(backend, args.idle_seconds)


if __name__ == "__main__":
    main()
