"""A worker that never runs out of work still wakes delayed jobs.

A busy worker claims new work with the write of its outcomes (`Store.finish_and_claim`) rather
than in its claim loop; its housekeeping (waking due jobs, expiring ttls, taking back dead
workers' leases) must not wait for an idle moment that never comes.
"""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from wireframe.scheduler import Domain, JobContext, Scheduler
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("url", ["memory://", "sqlite"])
async def test_a_delayed_job_runs_while_the_worker_is_saturated(
    url: str, tmp_path: Path
) -> None:
    chain = Domain("chain")
    delayed_ran = anyio.Event()
    links = 0

    @chain.job
    async def link(job: dict, ctx: JobContext) -> None:
        nonlocal links
        links += 1
        if not delayed_ran.is_set():  # keep the queue from ever running dry
            await scheduler.submit({}, type="chain::link")

    @chain.job
    async def later(job: dict, ctx: JobContext) -> None:
        delayed_ran.set()

    store = "memory://" if url == "memory://" else str(tmp_path / "jobs.db")
    scheduler = Scheduler(store, domains=[chain], max_concurrency=1)
    async with running(scheduler) as s:
        await s.submit({}, type="chain::link")
        await s.submit({}, type="chain::later", delay=0.05)
        with anyio.fail_after(10):
            await delayed_ran.wait()
    assert links > 1
