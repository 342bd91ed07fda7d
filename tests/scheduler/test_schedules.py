"""Recurring schedules through the Scheduler: Cron first runs, pause, resume and cancel, and
runs that never overlap."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import anyio
import attrs
import pytest

from wireframe import (
    Cron,
    Domain,
    Every,
    JobBlocked,
    JobContext,
    JobStarted,
    JobState,
    JobSubmitted,
    Overlap,
    Scheduler,
    ScheduleSkipped,
    scheduler_metrics,
)
from wireframe.scheduler.events import Subscription
from wireframe.store import ClaimRequest, MemoryStore
from wireframe.testing import running

pytestmark = pytest.mark.anyio

T = TypeVar("T")


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


LIMIT = 10.0


def _slow_ticks(domain: Domain, release: anyio.Event, runs: list[int]) -> list[int]:
    """Register a handler whose runs wait for `release`; return [active now, most at once]."""
    counts = [0, 0]

    @domain.job
    async def tick(job: Tick, ctx: JobContext) -> None:
        counts[0] += 1
        counts[1] = max(counts[1], counts[0])
        runs.append(ctx.job.id)
        try:
            await release.wait()
        finally:
            counts[0] -= 1

    return counts


async def _next(
    events: Subscription, kind: type[T], count: int = 1, where: Callable[[T], bool] | None = None
) -> list[T]:
    """The next `count` events of one kind that match `where` (others are passed over)."""
    found: list[T] = []
    async for event in events:
        if isinstance(event, kind) and (where is None or where(event)):
            found.append(event)
            if len(found) == count:
                break
    return found


async def test_a_slow_run_is_never_overlapped_and_the_skipped_firings_are_counted() -> None:
    clock = Domain("clock")
    release = anyio.Event()
    runs: list[int] = []
    counts = _slow_ticks(clock, release, runs)
    with anyio.fail_after(LIMIT):
        async with running(Scheduler("memory://", domains=[clock], poll_interval=0.01)) as s:
            metrics = scheduler_metrics(s)
            async with s.subscribe() as events:
                out = await s.submit(Tick(0), recurring=Every(0.02))
                sid = out.schedule_id
                assert sid is not None
                # The first run holds on: three firings come and each is skipped.
                await _next(events, JobStarted, where=lambda e: e.job_id == out.id)
                skips = await _next(events, ScheduleSkipped, 3)
                assert {(e.schedule_id, e.job_type, e.active_job_id) for e in skips} == {
                    (sid, "clock::tick", out.id)
                }
                assert runs == [out.id] and counts[1] == 1
                [schedule] = await s.schedules()
                assert schedule.overlap is Overlap.SKIP and schedule.skipped >= 3
                assert schedule.last_skipped_at is not None
                assert schedule.occurrences == 1 and schedule.last_job_id == out.id
                # Once it ends, the schedule runs again: one run at a time.
                release.set()
                await _next(events, JobStarted, where=lambda e: e.job_id != out.id)
            families = {f.name: f for f in await metrics()}
            [sample] = [
                x
                for x in families["wireframe_schedule_firings_skipped_total"].samples
                if x.labels == {"domain": "clock", "type": "clock::tick"}
            ]
            assert sample.value >= 3
            metrics.close()
            await s.cancel_schedule(sid)
    assert counts[1] == 1


async def test_queue_runs_one_waiting_occurrence_as_soon_as_the_run_ends() -> None:
    clock = Domain("clock")
    release = anyio.Event()
    runs: list[int] = []
    counts = _slow_ticks(clock, release, runs)
    with anyio.fail_after(LIMIT):
        async with running(Scheduler("memory://", domains=[clock], poll_interval=0.01)) as s:
            async with s.subscribe() as events:
                out = await s.submit(Tick(0), recurring=Every(0.02, overlap="queue"))
                seen = []
                async for event in events:
                    seen.append(event)
                    if isinstance(event, JobBlocked):
                        break
                blocked = seen[-1]
                assert isinstance(blocked, JobBlocked) and blocked.depends_on == (out.id,)
                submitted = [e.job_id for e in seen if isinstance(e, JobSubmitted)]
                assert submitted == [out.id, blocked.job_id]  # then it was blocked
                # One occurrence waits; the firings after it are skipped, behind the waiting one.
                skips = await _next(events, ScheduleSkipped, 2)
                assert {e.active_job_id for e in skips} == {blocked.job_id}
                waiting = await s.jobs(state=JobState.BLOCKED)
                assert [j.id for j in waiting] == [blocked.job_id]
                release.set()
                await _next(events, JobStarted, where=lambda e: e.job_id == blocked.job_id)
            await s.cancel_schedule(out.schedule_id)  # type: ignore[arg-type]
    assert runs[:2] == [out.id, blocked.job_id] and counts[1] == 1
