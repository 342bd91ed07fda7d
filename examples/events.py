"""Events and progress: ``scheduler.subscribe()`` and ``ctx.progress(fraction, message)``.

    python examples/events.py

A subscriber receives typed lifecycle events (``JobSubmitted``, ``JobStarted``, ``JobProgress``,
``JobRetrying``, ``JobFailedEvent``, ``JobCompleted``, ...) as they happen. Each subscription has a
bounded buffer, so a slow subscriber never slows the scheduler down: when its buffer is full the
oldest events are dropped and it receives one ``EventsLagged(missed=n)`` first.
``scheduler.snapshot()`` gives counts per state and the running jobs with their latest progress.
"""

from __future__ import annotations

import logging

import anyio
import attrs

from wireframe import (
    Domain,
    EventsLagged,
    JobCompleted,
    JobContext,
    JobFailedEvent,
    JobProgress,
    JobStarted,
    Retry,
    Scheduler,
    Service,
    StopReceiver,
    TaskKind,
)
from wireframe.scheduler.events import Event

media = Domain("media")


@attrs.frozen
class Encode:
    name: str
    frames: int


@media.job(retry=Retry.fixed(attempts=2, delay=0.05))
async def encode(job: Encode, ctx: JobContext) -> int:
    for frame in range(1, job.frames + 1):
        await anyio.sleep(0.02)
        ctx.progress(frame / job.frames, f"frame {frame}/{job.frames}")
        if job.name == "glitchy" and ctx.job.attempt == 1 and frame == 2:
            raise ValueError("corrupt frame")
    return job.frames


def describe(event: Event) -> str:
    """One line per event."""
    if isinstance(event, JobProgress):
        return f"job {event.job_id} progress {event.fraction:4.0%} {event.message}"
    if isinstance(event, JobStarted):
        return f"job {event.job_id} started (attempt {event.attempt}) on {event.worker_id}"
    if isinstance(event, JobFailedEvent):
        return f"job {event.job_id} failed: {event.error} (will retry: {event.will_retry})"
    if isinstance(event, JobCompleted):
        return f"job {event.job_id} completed in {event.duration:.2f} s"
    if isinstance(event, EventsLagged):
        return f"(lagged: {event.missed} events dropped)"
    return f"job {event.job_id} {event.kind}"


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/events.py` runs it too)."""
    scheduler = Scheduler("memory://", domains=[media], max_concurrency=2)
    service = Service("events", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        async with scheduler.subscribe() as events:
            outs = await scheduler.submit_many([Encode("intro", 3), Encode("glitchy", 3)])
            ends = 0
            shown = False
            async for event in events:
                print(describe(event))
                if isinstance(event, JobProgress) and not shown:  # once, while jobs run
                    shown = True
                    snapshot = await scheduler.snapshot()
                    for running in snapshot.running:
                        print(f"    snapshot: job {running.id} running, at {running.message}")
                if isinstance(event, JobCompleted):
                    ends += 1
                    if ends == len(outs):
                        break

        # A subscriber with a 5-event buffer that reads nothing until the work is done.
        async with scheduler.subscribe(buffer=5) as slow:
            out = await scheduler.submit(Encode("long", 10))
            await scheduler.result(out.id, timeout=10)
            first = await slow.receive()
            print(f"slow subscriber: {describe(first)}, then {slow.pending} buffered events")
            assert isinstance(first, EventsLagged)
        snapshot = await scheduler.snapshot()
        print("snapshot:", {str(state): n for state, n in snapshot.by_domain["media"].items()})
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
