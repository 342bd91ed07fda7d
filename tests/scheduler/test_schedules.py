"""Recurring schedules through the Scheduler: Cron first runs, pause, resume and cancel."""

from __future__ import annotations

import time

import anyio
import attrs
import pytest

from wireframe import Cron, Domain, Every, JobContext, JobState, Scheduler
from wireframe.store import ClaimRequest, MemoryStore
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


async def test_every_occurrence_of_a_schedule_with_a_ttl_expires_after_its_own_run() -> None:
    clock = Domain("clock")

    @clock.job
    async def tick(job: Tick, ctx: JobContext) -> None:
        return None

    now = [time.time()]
    s = Scheduler(MemoryStore(clock=lambda: now[0]), domains=[clock])
    assert s.worker is not None
    await s.open()
    out = await s.submit(Tick(0), recurring=Every(60), ttl=5)
    first = await s.get(out.id)
    assert first is not None and first.expires_at == first.run_at + 5
    await s.cancel(out.id)
    occurrences: list[int] = []
    for _ in range(2):
        [schedule] = await s.schedules()
        assert schedule.next_run_at is not None
        now[0] = schedule.next_run_at  # the store's clock reaches the next occurrence
        assert await s.worker._maintenance.fire_schedules() == 1
        [schedule] = await s.schedules()
        assert schedule.last_job_id is not None
        job = await s.get(schedule.last_job_id)
        assert job is not None and job.state is JobState.PENDING
        assert job.expires_at == job.run_at + 5
        occurrences.append(job.id)
        now[0] += 5  # its ttl runs out before a worker takes it
        assert await s.store.claim(ClaimRequest("w", 1, 30.0, ("clock",))) == []
        assert (await s.get(job.id)).state is JobState.EXPIRED  # type: ignore[union-attr]
    assert len(set(occurrences)) == 2
    await s.close()
