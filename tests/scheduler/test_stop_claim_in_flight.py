"""A claim that is under way when a worker stops: the jobs it leases are handed back, not
started, not stranded under the stopped worker's lease, and the stop stays clean."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import anyio
import pytest

from wireframe import Domain, JobContext, JobState, Scheduler, Service
from wireframe.store import Chooser, ClaimRequest, JobRecord, Outcome, SqliteStore

pytestmark = pytest.mark.anyio


async def test_jobs_claimed_by_a_write_that_ends_after_the_stop_are_handed_back(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    work = Domain("work")
    ran: list[int] = []

    @work.job
    async def task(job: dict[str, int], ctx: JobContext) -> None:
        ran.append(job["n"])

    store = SqliteStore(tmp_path / "jobs.db")
    writing, go_on = anyio.Event(), anyio.Event()
    finish_and_claim = store.finish_and_claim

    async def held_write(
        outcomes: Sequence[Outcome], request: ClaimRequest, chooser: Chooser | None = None
    ) -> tuple[list[bool], list[JobRecord]]:
        writing.set()
        await go_on.wait()  # returns only once the worker has closed its queue of jobs
        return await finish_and_claim(outcomes, request, chooser)

    store.finish_and_claim = held_write  # type: ignore[method-assign]
    scheduler = Scheduler(store, domains=[work], claim_ttl=60.0)
    service = Service("t", handle_signals=False, graceful_timeout=10)
    service.add_task(scheduler)
    caplog.set_level(logging.WARNING)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            first = (await scheduler.submit({"n": 1}, type="work::task")).id
            await writing.wait()  # job 1 ran; its outcome is being written with a claim
            second = (await scheduler.submit({"n": 2}, type="work::task")).id
            worker = scheduler.worker
            assert worker is not None
            close = worker._executor.close  # the write returns right after the queue closed

            def close_then_release() -> None:
                close()
                go_on.set()

            worker._executor.close = close_then_release  # type: ignore[method-assign]
            service.stop()
    assert [t.state.value for t in service.status().tasks] == ["finished"]
    assert ran == [1]
    async with Scheduler(tmp_path / "jobs.db", domains=[], worker=False) as s:
        done, back = await s.get(first), await s.get(second)
    assert done is not None and done.state is JobState.COMPLETED
    assert back is not None and back.state is JobState.PENDING
    assert (back.worker_id, back.lease_expires_at) == (None, None)
    assert not [r for r in caplog.records if "rejected" in r.getMessage()]
