"""A schedule fires at its own pace, not the worker's one-second chore pass: after firing it,
the worker comes back when it is due again."""

from __future__ import annotations

import anyio
import pytest

from wireframe import Domain, Every, JobContext, Scheduler
from wireframe.testing import running

pytestmark = pytest.mark.anyio

RUNS = 40


async def test_a_fast_schedule_runs_at_its_own_pace() -> None:
    # At one pass a second, 40 occurrences would take 40 s and fail_after(20) would end the
    # test; at the schedule's own pace they take well under a second.
    d = Domain("d")
    ran: list[int] = []
    all_ran = anyio.Event()

    @d.job
    async def tick(job: dict[str, int], ctx: JobContext) -> None:
        ran.append(ctx.job.id)
        if len(ran) == RUNS:
            all_ran.set()

    with anyio.fail_after(20):
        async with running(Scheduler("memory://", domains=[d], poll_interval=5.0)) as s:
            await s.submit({}, type="d::tick", recurring=Every(0.01, max_occurrences=RUNS))
            await all_ran.wait()
            [schedule] = await s.schedules()
    assert len(set(ran)) == RUNS and schedule.occurrences == RUNS
