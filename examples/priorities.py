"""Priorities: named levels and plain integers, FIFO within a level, and aging.

    python examples/priorities.py

1. One worker slot is held busy while seven jobs queue up; once it is free they run highest
   priority first (``Priority.CRITICAL`` > ``HIGH`` > an int like 15 > ``NORMAL`` > ``LOW``), and
   in submission order within a level.
2. Aging: a ``LOW`` job waits behind a never-ending stream of ``HIGH`` jobs. Every
   ``aging_interval`` it has waited raises its priority by one level, so it gets through while the
   stream is still going instead of starving.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import anyio
import attrs

from wireframe import (
    Domain,
    JobContext,
    JobState,
    Priority,
    Scheduler,
    Service,
    StopReceiver,
    TaskKind,
)

work = Domain("work")
order: list[str] = []


class Gate:
    """Shared state for the handlers (``ctx.state(Gate)``): holds the blocker job."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.release = anyio.Event()


@attrs.frozen
class Step:
    name: str
    seconds: float = 0.0


@work.job
async def step(job: Step, ctx: JobContext) -> None:
    if job.name == "blocker":  # hold the only slot until the queue is filled
        gate = ctx.state(Gate)
        gate.started.set()
        await gate.release.wait()
    order.append(job.name)
    await anyio.sleep(job.seconds)


async def levels_and_fifo(scheduler: Scheduler) -> None:
    gate = Gate()
    scheduler.provide(gate)
    await scheduler.submit(Step("blocker"))
    await gate.started.wait()
    queued = [
        ("low", Priority.LOW),
        ("normal-1", Priority.NORMAL),
        ("high", Priority.HIGH),
        ("normal-2", Priority.NORMAL),
        ("int-15", 15),  # any int in [-1000, 1000]; the levels are 0, 10, 20, 30
        ("critical", Priority.CRITICAL),
        ("normal-3", "normal"),  # a level name works too
    ]
    ids = [(await scheduler.submit(Step(name), priority=p)).id for name, p in queued]
    gate.release.set()
    for job_id in ids:
        await scheduler.result(job_id, timeout=10)
    print("submitted:", ", ".join(name for name, _ in queued))
    print("ran:      ", ", ".join(order[1:]))
    assert order[1:] == ["critical", "high", "int-15", "normal-1", "normal-2", "normal-3", "low"]


async def aging(scheduler: Scheduler) -> None:
    order.clear()
    started = time.monotonic()
    low = await scheduler.submit(Step("LOW", 0.02), priority=Priority.LOW)
    stream: deque[int] = deque()
    high_ran = 0
    # Keep three HIGH jobs queued at all times: without aging, LOW would never run.
    while (await scheduler.get(low.id)).state is not JobState.COMPLETED:  # type: ignore[union-attr]
        while len(stream) < 3:
            out = await scheduler.submit(Step(f"high-{high_ran + len(stream)}", 0.02), priority=20)
            stream.append(out.id)
        await scheduler.result(stream.popleft(), timeout=10)
        high_ran += 1
        assert time.monotonic() - started < 10, "the LOW job starved"
    waited = time.monotonic() - started
    print(f"aging: LOW ran after {waited:.2f} s, {high_ran} HIGH jobs into an endless stream")
    for job_id in stream:
        await scheduler.result(job_id, timeout=10)


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/priorities.py` runs it too)."""
    # One slot makes the order visible; aging_interval is short so the demo is quick (default 60 s).
    scheduler = Scheduler(
        "memory://", domains=[work], max_concurrency=1, aging_interval=0.3, poll_interval=0.05
    )
    service = Service("priorities", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        await levels_and_fifo(scheduler)
        await aging(scheduler)
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
