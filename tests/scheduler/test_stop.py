"""How a worker stops: intake first, then a drain bounded by its shutdown mode and the
service's graceful deadline, then the jobs it still holds handed back (pending again, durable
checkpoints kept, no attempt spent), also when it is cancelled (a forced stop)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from wireframe import (
    Domain,
    JobContext,
    JobState,
    Scheduler,
    Service,
    ServiceError,
    ShutdownMode,
    StopReceiver,
    Task,
)

pytestmark = pytest.mark.anyio


def _domain(started: anyio.Event, quick_done: list[str]) -> Domain:
    d = Domain("d")

    @d.job
    async def forever(job: dict[str, str], ctx: JobContext) -> None:
        await ctx.step("before", lambda: "recorded")
        started.set()
        await anyio.sleep_forever()

    @d.job
    async def quick(job: dict[str, str], ctx: JobContext) -> None:
        quick_done.append("started")
        await anyio.sleep(0.2)  # still running when the stop comes
        quick_done.append("done")

    return d


async def _inspect(path: Path, job_id: int) -> tuple[JobState, int, int, str | None]:
    async with Scheduler(path, domains=[], worker=False) as s:
        job = await s.get(job_id)
        assert job is not None
        assert job.worker_id is None and job.lease_expires_at is None
        return job.state, job.attempt, len(await s.store.checkpoints(job_id)), job.reason


async def test_a_cancelled_worker_hands_back_the_jobs_it_holds(tmp_path: Path) -> None:
    started = anyio.Event()
    s = Scheduler(tmp_path / "jobs.db", domains=[_domain(started, [])])
    async with anyio.create_task_group() as tg:
        tg.start_soon(s.run, _never())
        job_id = (await s.submit({}, type="d::forever")).id
        await started.wait()
        tg.cancel_scope.cancel()  # what a forced stop does to its tasks
    assert await _inspect(tmp_path / "jobs.db", job_id) == (
        JobState.PENDING,
        1,
        1,
        "worker stopped before the job finished",
    )


async def test_a_stop_drains_then_hands_back_what_is_left(tmp_path: Path) -> None:
    started = anyio.Event()
    quick_done: list[str] = []
    s = Scheduler(
        tmp_path / "jobs.db",
        domains=[_domain(started, quick_done)],
        shutdown=ShutdownMode.graceful(0.5),
    )
    service = Service("t", handle_signals=False, graceful_timeout=10)
    service.add_task(s)
    async with anyio.create_task_group() as tg:
        tg.start_soon(service.run)
        stuck = (await s.submit({}, type="d::forever")).id
        quick = (await s.submit({}, type="d::quick")).id
        await started.wait()
        while not quick_done:
            await anyio.sleep(0.01)
        service.stop()
    assert quick_done == ["started", "done"]  # running at the stop: drained
    state, attempt, checkpoints, _ = await _inspect(tmp_path / "jobs.db", stuck)
    assert (state, attempt, checkpoints) == (JobState.PENDING, 1, 1)
    assert (await _inspect(tmp_path / "jobs.db", quick))[0] is JobState.COMPLETED


async def test_the_hand_back_fits_in_the_service_graceful_timeout(tmp_path: Path) -> None:
    # The worker would drain for 20 s; the service cancels its tasks after 1.5 s. The worker
    # hands its job back before that, so the service stops cleanly (no task cancelled).
    started = anyio.Event()
    s = Scheduler(tmp_path / "jobs.db", domains=[_domain(started, [])])
    service = Service("t", handle_signals=False, graceful_timeout=1.5)
    service.add_task(s)
    async with anyio.create_task_group() as tg:
        tg.start_soon(service.run)
        job_id = (await s.submit({}, type="d::forever")).id
        await started.wait()
        service.stop()
    state, attempt, checkpoints, _ = await _inspect(tmp_path / "jobs.db", job_id)
    assert (state, attempt, checkpoints) == (JobState.PENDING, 1, 1)
    assert [t.state.value for t in service.status().tasks] == ["finished"]


def _never() -> object:
    from wireframe.service import StopReceiver

    return StopReceiver()


def _held_domain(started: anyio.Event, release: anyio.Event, ran: list[str]) -> Domain:
    d = Domain("h")

    @d.job
    async def holder(job: dict[str, str], ctx: JobContext) -> None:
        started.set()
        await release.wait()
        ran.append("holder")

    @d.job
    async def late(job: dict[str, str], ctx: JobContext) -> None:
        ran.append("late")

    return d


async def test_a_worker_claims_on_during_the_stop_delay(tmp_path: Path) -> None:
    started, release, ran = anyio.Event(), anyio.Event(), []
    s = Scheduler(tmp_path / "jobs.db", domains=[_held_domain(started, release, ran)])
    service = Service("t", handle_signals=False, graceful_timeout=10, stop_delay=3600)
    service.add_task(s)
    errors: list[Exception] = []

    async def run() -> None:
        try:
            await service.run()
        except ServiceError as exc:  # the forced stop cancelled the worker
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        holder = (await s.submit({}, type="h::holder")).id
        await started.wait()
        service.stop()  # not ready now, but still serving: the worker still claims
        assert service.status().in_stop_delay
        late = (await s.submit({}, type="h::late")).id
        with anyio.fail_after(10):
            while not ran:
                await anyio.sleep(0.01)
        assert service.status().in_stop_delay
        service.stop(force=True)  # ends the delay; the held job is handed back
    assert ran == ["late"] and len(errors) == 1
    assert (await _inspect(tmp_path / "jobs.db", late))[0] is JobState.COMPLETED
    assert (await _inspect(tmp_path / "jobs.db", holder))[:2] == (JobState.PENDING, 1)


async def test_after_the_stop_delay_intake_stops_before_the_drain(tmp_path: Path) -> None:
    # The worker holds a job when its stop arrives (after the delay). A job submitted then is
    # not claimed: intake stopped before the drain, which lets the held job finish.
    started, release, ran = anyio.Event(), anyio.Event(), []
    told = anyio.Event()
    s = Scheduler(
        tmp_path / "jobs.db",
        domains=[_held_domain(started, release, ran)],
        shutdown=ShutdownMode.graceful(10),
    )
    service = Service("t", handle_signals=False, graceful_timeout=10, stop_delay=0.05)
    service.add_task(s)

    async def watcher(stop: StopReceiver) -> None:
        await stop.wait()
        told.set()

    service.add_task(Task.from_fn("watcher", watcher))
    async with anyio.create_task_group() as tg:
        tg.start_soon(service.run)
        holder = (await s.submit({}, type="h::holder")).id
        await started.wait()
        service.stop()
        await told.wait()  # the stop delay is over: the tasks have their stop
        assert not service.status().in_stop_delay
        late = (await s.submit({}, type="h::late")).id
        await anyio.sleep(0.1)  # room for a (wrong) claim; the assertion does not rely on it
        release.set()  # the drain: the held job finishes
    assert ran == ["holder"]
    assert (await _inspect(tmp_path / "jobs.db", holder))[0] is JobState.COMPLETED
    assert (await _inspect(tmp_path / "jobs.db", late))[:2] == (JobState.PENDING, 0)
