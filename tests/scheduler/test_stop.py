"""How a worker stops: intake first, then a drain bounded by its shutdown mode and the
service's graceful deadline, then the jobs it still holds handed back (pending again, durable
checkpoints kept, no attempt spent), also when it is cancelled (a forced stop)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from wireframe import Domain, JobContext, JobState, Scheduler, Service, ShutdownMode

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
