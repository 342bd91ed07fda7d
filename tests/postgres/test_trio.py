"""The PostgreSQL store under trio, end to end (its conformance suite runs under asyncio only):
a scheduler submits, runs jobs with durable steps, sleeps and children, cancels and reports."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from wireframe import Domain, JobContext, JobState, Scheduler
from wireframe.store import PostgresStore
from wireframe.testing import running

from pg_support import drop_schema, new_schema_name, require_pg


@pytest.fixture
def url() -> Iterator[str]:
    """A fresh schema on the test server, dropped afterwards."""
    dsn = require_pg()
    name = new_schema_name("wftrio")
    yield f"{dsn}?schema={name}"
    drop_schema(name)


def test_a_scheduler_on_postgresql_runs_under_trio(url: str) -> None:
    d = Domain("d")

    @d.job
    async def child(job: dict[str, int], ctx: JobContext) -> int:
        return job["n"] + 1

    @d.job
    async def parent(job: dict[str, int], ctx: JobContext) -> int:
        doubled: int = await ctx.step("double", lambda n: n * 2, job["n"])
        await ctx.sleep("nap", 0.05)
        result: int = await ctx.join(await ctx.spawn({"n": doubled}, type="d::child"))
        return result

    @d.job
    async def forever(job: dict[str, int], ctx: JobContext) -> None:
        await anyio.sleep_forever()

    async def main() -> None:
        s = Scheduler(PostgresStore(url), domains=[d], poll_interval=0.05, cancel_grace=0.1)
        async with running(s):
            async with s.subscribe() as events:
                job = (await s.submit({"n": 20}, type="d::parent")).id
                assert await s.result(job, timeout=20) == 41
                stuck = (await s.submit({}, type="d::forever")).id
                with anyio.fail_after(20):
                    while (await s.get(stuck)).state is not JobState.RUNNING:  # type: ignore[union-attr]
                        await anyio.sleep(0.02)
                await s.cancel(stuck)  # running: it is asked to stop, then ends cancelled
                kinds = []
                with anyio.move_on_after(5):
                    async for event in events:
                        kinds.append((event.job_id, event.kind))
                        if (stuck, "cancelled") in kinds:
                            break
            assert (job, "completed") in kinds and (stuck, "cancelled") in kinds

    anyio.run(main, backend="trio")
