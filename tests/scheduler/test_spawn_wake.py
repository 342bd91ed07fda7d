"""A job's spawns and emits wake its own worker at once: a child, or a job waiting for the event,
starts without waiting for the poll interval."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from wireframe import Domain, JobContext, Scheduler
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"


async def test_a_spawned_child_and_an_event_waiter_start_while_the_job_runs(url: str) -> None:
    d = Domain("d")
    child_ran, waiter_woke = anyio.Event(), anyio.Event()

    @d.job
    async def child(job: dict[str, int], ctx: JobContext) -> None:
        child_ran.set()

    @d.job
    async def waiter(job: dict[str, int], ctx: JobContext) -> None:
        await ctx.wait_event("go")
        waiter_woke.set()

    @d.job
    async def parent(job: dict[str, int], ctx: JobContext) -> None:
        # The parent keeps running (no outcome is written meanwhile, which would also wake
        # the worker): only the spawn and the emit themselves can start the others.
        await ctx.spawn({}, type="d::child")
        await child_ran.wait()
        await ctx.emit_event("go")
        await waiter_woke.wait()

    # Nothing another process could add is expected here: a poll every minute.
    async with running(Scheduler(url, domains=[d], poll_interval=60.0)) as s:
        waiting = (await s.submit({}, type="d::waiter")).id
        with anyio.fail_after(10):
            while (await s.get(waiting)).state.value != "suspended":  # type: ignore[union-attr]
                await anyio.sleep(0.01)
        job = (await s.submit({}, type="d::parent")).id
        await s.result(job, timeout=10)
