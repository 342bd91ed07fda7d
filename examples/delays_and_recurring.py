"""Delays and recurring jobs: ``delay=``, ``run_at=``, ``Every`` and ``Cron`` schedules.

    python examples/delays_and_recurring.py

- ``delay=0.3`` keeps a job ``scheduled`` for 0.3 s; ``run_at=`` takes an aware datetime (or a
  UNIX time).
- ``recurring=Every(0.2, max_occurrences=3)`` fires three times and then the schedule is
  ``finished``.
- Runs of a schedule never pile up: by default (``overlap="skip"``) a firing that comes while the
  previous run has not ended is skipped and counted in ``ScheduleRecord.skipped``;
  ``overlap="queue"`` keeps one waiting behind the run, ``overlap="allow"`` lets them overlap.
- ``recurring=Cron("*/5 * * * *")`` fires every five minutes; here we only look at it.
- A schedule can be paused (no new occurrences), resumed and cancelled.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import anyio
import attrs

from wireframe import (
    Cron,
    Domain,
    Every,
    JobCompleted,
    JobContext,
    JobState,
    Scheduler,
    Service,
    StopReceiver,
    TaskKind,
)

clock = Domain("clock")
runs: dict[str, list[float]] = {}


@attrs.frozen
class Tick:
    name: str


@clock.job
async def tick(job: Tick, ctx: JobContext) -> None:
    runs.setdefault(job.name, []).append(time.time())
    if job.name == "slow":
        await anyio.sleep(0.3)  # outlasts the schedule's 0.05 s interval


def count(name: str) -> int:
    return len(runs.get(name, []))


def main() -> int:
    # poll_interval: how often the worker looks for due schedules (default 1 s).
    scheduler = Scheduler("memory://", domains=[clock], poll_interval=0.05)
    service = Service("delays", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        # -- delay and run_at ------------------------------------------------------------------
        submitted = time.time()
        later = await scheduler.submit(Tick("delayed"), delay=0.3)
        at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
        timed = await scheduler.submit(Tick("run_at"), run_at=at)
        print("delayed job is", (await scheduler.get(later.id)).state)  # type: ignore[union-attr]
        await scheduler.result(later.id, timeout=10)
        await scheduler.result(timed.id, timeout=10)
        print(f"delay=0.3 ran after {runs['delayed'][0] - submitted:.2f} s")
        print(f"run_at=now+0.5s ran after {runs['run_at'][0] - submitted:.2f} s")

        # -- Every, with a limit ---------------------------------------------------------------
        every = Every(0.2, max_occurrences=3)
        out = await scheduler.submit(Tick("every"), recurring=every)
        sid = out.schedule_id  # type: ignore[union-attr]
        print(f"schedule {sid}: {every.describe()}")
        await anyio.sleep(1.0)  # fires at 0, 0.2 and 0.4 s; no fourth occurrence comes
        schedule = next(s for s in await scheduler.schedules() if s.id == sid)
        print(f"  ran {count('every')} times; schedule is {schedule.state}")
        assert count("every") == 3 and schedule.state == "finished"

        # -- overlap: a run that outlasts its interval -----------------------------------------
        async with scheduler.subscribe() as events:
            out = await scheduler.submit(Tick("slow"), recurring=Every(0.05, max_occurrences=2))
            sid = out.schedule_id  # type: ignore[union-attr]
            async for event in events:  # until the second run completes
                if isinstance(event, JobCompleted) and event.job_id != out.id:
                    break
        schedule = next(s for s in await scheduler.schedules() if s.id == sid)
        gap = runs["slow"][1] - runs["slow"][0]
        print(f"slow: the second run started {gap:.2f} s after the first (never overlapping);")
        print(f"  {schedule.skipped} firings were skipped (overlap={schedule.overlap})")
        assert gap >= 0.3 and schedule.skipped > 0

        # -- Cron ------------------------------------------------------------------------------
        cron = Cron("*/5 * * * *")
        out = await scheduler.submit(Tick("cron"), recurring=cron)
        first = await scheduler.get(out.id)
        assert first is not None and first.state is JobState.SCHEDULED
        when = dt.datetime.fromtimestamp(first.run_at, dt.UTC).strftime("%H:%M UTC")
        print(f"{cron.describe()}; first run at {when}")
        await scheduler.cancel_schedule(out.schedule_id)  # type: ignore[union-attr]

        # -- pause, resume, cancel a schedule ----------------------------------------------------
        out = await scheduler.submit(Tick("heartbeat"), recurring=Every(0.1))
        sid = out.schedule_id  # type: ignore[union-attr]
        await anyio.sleep(0.35)
        record = await scheduler.pause_schedule(sid)
        if record.last_job_id is not None:  # an occurrence fired before the pause still runs
            await scheduler.result(record.last_job_id, timeout=10)
        paused_at = count("heartbeat")
        await anyio.sleep(0.4)
        print(f"heartbeat: {paused_at} runs, paused; {count('heartbeat')} runs 0.4 s later")
        assert count("heartbeat") == paused_at
        await scheduler.resume_schedule(sid)
        await anyio.sleep(0.35)
        print(f"  resumed: {count('heartbeat')} runs")
        assert count("heartbeat") > paused_at
        record = await scheduler.cancel_schedule(sid)
        print(f"  cancelled: schedule is {record.state} after {record.occurrences} occurrences")
        service.stop("demo finished")

    return service.run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
