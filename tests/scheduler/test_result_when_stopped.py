"""`result()` waiting on a job when its scheduler stops: a SchedulerClosed naming the job, at
once, not a store error telling the user to open the store."""

from __future__ import annotations

import anyio
import pytest

from wireframe import (
    Domain,
    JobContext,
    JobState,
    Scheduler,
    SchedulerClosed,
    SchedulerError,
    ShutdownMode,
)
from wireframe.testing import running

pytestmark = pytest.mark.anyio


async def test_a_result_awaited_when_the_scheduler_stops_says_so(tmp_path: object) -> None:
    d = Domain("d")
    started = anyio.Event()

    @d.job
    async def forever(job: dict[str, int], ctx: JobContext) -> None:
        started.set()
        await anyio.sleep_forever()

    caught: list[BaseException] = []

    async def wait_for(s: Scheduler, job_id: int) -> None:
        try:
            await s.result(job_id)
        except SchedulerError as exc:
            caught.append(exc)

    with anyio.fail_after(20):
        async with (
            anyio.create_task_group() as tg,
            running(Scheduler("memory://", domains=[d], shutdown=ShutdownMode.graceful(0.1))) as s,
        ):
            job_id = (await s.submit({}, type="d::forever")).id
            await started.wait()
            tg.start_soon(wait_for, s, job_id)
            await anyio.wait_all_tasks_blocked()
    assert len(caught) == 1 and isinstance(caught[0], SchedulerClosed), caught
    assert caught[0].job_id == job_id and caught[0].state is JobState.PENDING  # handed back
    assert str(caught[0]) == (
        f"the scheduler stopped while waiting for job {job_id}; the job is still pending"
    )
