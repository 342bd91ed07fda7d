"""Cancellation and preemption of running jobs.

    python examples/cancel_and_preempt.py

- ``scheduler.cancel(id)`` on a running job first sets ``ctx.cancelled``; a handler that watches
  it can stop cleanly (here it saves a partial result first). One that does not is cancelled
  through anyio after ``cancel_grace`` seconds.
- With every slot busy, a ``HIGH`` job preempts a running ``preemptible=True`` job of lower
  priority: the preempted job goes back to ``pending`` without spending an attempt, and runs
  again once the slot is free.
"""

from __future__ import annotations

import logging

import anyio
import attrs

from wireframe import (
    Domain,
    JobContext,
    JobFailed,
    JobPreempted,
    JobStarted,
    Priority,
    Scheduler,
    Service,
    StopReceiver,
    TaskKind,
)

work = Domain("work")
saved: list[str] = []


@attrs.frozen
class Export:
    rows: int


@work.job
async def export(job: Export, ctx: JobContext) -> int:
    done = 0
    while done < job.rows:
        if ctx.cancelled:  # cancel requested: wrap up within the grace period
            saved.append(f"export stopped at row {done} of {job.rows}; partial file kept")
            return done
        done += 100
        await anyio.sleep(0.01)
    return done


@attrs.frozen
class Reindex:
    name: str


@work.job(preemptible=True)
async def reindex(job: Reindex, ctx: JobContext) -> str:
    await anyio.sleep(0.5)  # long, low-priority background work
    return f"{job.name} reindexed (attempt {ctx.job.attempt})"


@attrs.frozen
class Alert:
    text: str


@work.job
async def alert(job: Alert, ctx: JobContext) -> str:
    return f"sent {job.text!r}"


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/cancel_and_preempt.py` runs it too)."""
    scheduler = Scheduler("memory://", domains=[work], max_concurrency=1, cancel_grace=1.0)
    service = Service("cancel", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        async with scheduler.subscribe() as events:
            # -- cancel a running job ---------------------------------------------------------
            out = await scheduler.submit(Export(rows=1_000_000))
            async for event in events:
                if isinstance(event, JobStarted) and event.job_id == out.id:
                    break
            await anyio.sleep(0.1)
            state = await scheduler.cancel(out.id)
            print(f"cancel({out.id}) -> {state}: requested; the handler now sees ctx.cancelled")
            try:
                await scheduler.result(out.id, timeout=10)
            except JobFailed as exc:
                print(f"  {exc}; the handler said: {saved[0]}")

            # -- preemption --------------------------------------------------------------------
            low = await scheduler.submit(Reindex("products"), priority=Priority.LOW)
            async for event in events:
                if isinstance(event, JobStarted) and event.job_id == low.id:
                    break
            high = await scheduler.submit(Alert("disk almost full"), priority=Priority.HIGH)
            print("HIGH:", await scheduler.result(high.id, timeout=10))
            print("LOW: ", await scheduler.result(low.id, timeout=10))
            seen = []
            while (event := events.receive_nowait()) is not None:
                if getattr(event, "job_id", None) in (low.id, high.id):
                    seen.append(event)
            print("events:", " ".join(f"{e.kind}#{e.job_id}" for e in seen))
            assert any(isinstance(e, JobPreempted) and e.job_id == low.id for e in seen)
            job = await scheduler.get(low.id)
            assert job is not None and job.attempt == 1  # preemption spent no attempt
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
