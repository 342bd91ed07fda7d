"""Recurring schedules through the Scheduler: Cron first runs, pause, resume and cancel."""

from __future__ import annotations

import time

import anyio
import attrs
import pytest

from wireframe import Cron, Domain, Every, JobContext, JobState, Scheduler
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Tick:
    n: int


async def test_cron_submission_schedules_the_first_run_at_the_next_match() -> None:
    clock = Domain("clock")

    @clock.job
    async def tick(job: Tick, ctx: JobContext) -> None:
        return None

    s = Scheduler("memory://", domains=[clock])
    await s.open()
    out = await s.submit(Tick(0), recurring=Cron("*/5 * * * *"))
    job = await s.get(out.id)
    assert job is not None and job.state is JobState.SCHEDULED
    assert job.run_at % 300 == 0 and 0 < job.run_at - time.time() <= 300
    [schedule] = await s.schedules()
    assert schedule.next_run_at == job.run_at + 300
    cancelled = await s.cancel_schedule(out.schedule_id)  # type: ignore[union-attr]
    assert cancelled.state == "cancelled"
    assert (await s.get(out.id)).state is JobState.CANCELLED  # type: ignore[union-attr]
    await s.close()


async def test_pause_stops_new_occurrences_and_resume_starts_them_again() -> None:
    clock = Domain("clock")
    ticks: list[float] = []

    @clock.job
    async def tick(job: Tick, ctx: JobContext) -> None:
        ticks.append(time.time())

    async with running(Scheduler("memory://", domains=[clock], poll_interval=0.02)) as s:
        out = await s.submit(Tick(0), recurring=Every(0.05))
        sid = out.schedule_id  # type: ignore[union-attr]
        assert sid is not None
        while len(ticks) < 2:
            await anyio.sleep(0.01)
        paused = await s.pause_schedule(sid)
        assert paused.state == "paused"
        await anyio.sleep(0.05)  # let a fire already in progress finish
        seen = len(ticks)
        await anyio.sleep(0.25)  # five periods: a running schedule would fire again
        assert len(ticks) == seen, "a paused schedule fired"
        resumed = await s.resume_schedule(sid)
        assert resumed.state == "active"
        while len(ticks) < seen + 2:
            await anyio.sleep(0.01)
        await s.cancel_schedule(sid)
