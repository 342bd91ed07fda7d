"""A finished job keeps its lease until its outcome is written."""

from __future__ import annotations

from collections.abc import Sequence

import anyio
import pytest

from wireframe.scheduler import Domain, JobContext, JobState, Scheduler
from wireframe.store import Chooser, ClaimRequest, JobRecord, MemoryStore, Outcome
from wireframe.testing import running

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_heartbeat_renews_the_lease_of_a_job_whose_outcome_is_being_written() -> None:
    work = Domain("work")

    @work.job
    async def task(job: dict, ctx: JobContext) -> str:
        return "done"

    clock = Clock()
    store = MemoryStore(clock=clock)
    writing = anyio.Event()
    go_on = anyio.Event()
    finish, finish_and_claim = store.finish, store.finish_and_claim

    async def slow_finish(outcomes: Sequence[Outcome]) -> list[bool]:
        writing.set()
        await go_on.wait()
        return await finish(outcomes)

    async def slow_finish_and_claim(
        outcomes: Sequence[Outcome], request: ClaimRequest, chooser: Chooser | None = None
    ) -> tuple[list[bool], list[JobRecord]]:
        writing.set()
        await go_on.wait()
        return await finish_and_claim(outcomes, request, chooser)

    # A worker with free slots claims with the write (finish_and_claim); else it only writes.
    store.finish = slow_finish  # type: ignore[method-assign]
    store.finish_and_claim = slow_finish_and_claim  # type: ignore[method-assign]
    scheduler = Scheduler(store, domains=[work], claim_ttl=60.0)
    with anyio.fail_after(20):
        async with running(scheduler) as s:
            try:
                job_id = (await s.submit({}, type="work::task")).id
                await writing.wait()  # the handler returned; its completion is not written yet
                before = await s.get(job_id)
                assert before is not None and before.state is JobState.RUNNING
                assert before.lease_expires_at == clock.now + 60.0
                clock.now += 45.0
                assert s.worker is not None
                await s.worker.check_requests()  # what the heartbeat loop does every ttl / 4
                after = await s.get(job_id)
                assert after is not None and after.lease_expires_at == clock.now + 60.0
            finally:
                go_on.set()  # a failed check must not leave the write hanging
            assert await s.result(job_id, timeout=10) == "done"
