"""A finalize handler's durable calls are recorded apart from its execute handler's: it may
step, sleep and spawn after the execute handler spawned, and its re-runs replay its own record
(and fail loudly when they diverge from it)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from durable_support import ALL_KINDS, KINDS, scheduler_on

from wireframe import (
    Domain,
    JobContext,
    JobFailed,
    JobState,
    JobType,
    Retry,
    Scheduler,
    ShutdownMode,
)
from wireframe.testing import running

pytestmark = pytest.mark.anyio


def fan_out(attempts: int = 1) -> tuple[Domain, JobType, Counter[str]]:  # type: ignore[type-arg]
    """`flow::parent` spawns two children, then returns; each test adds its finalize."""
    flow = Domain("flow")
    calls: Counter[str] = Counter()

    @flow.job(retry=Retry.fixed(attempts=attempts, delay=0))
    async def parent(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        for n in (1, 2):
            await ctx.spawn({"n": n}, type="flow::child")
        return "spawned"

    @flow.job
    async def child(job: dict, ctx: JobContext) -> int:  # type: ignore[type-arg]
        return int(job["n"])

    return flow, parent, calls


def counter(calls: Counter[str]) -> Callable[[str, Any], Any]:
    """A step function that counts its runs by name in `calls` and returns `value`."""

    def counted(name: str, value: Any) -> Any:
        calls[name] += 1
        return value

    return counted


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_finalize_steps_and_sleeps_after_the_execute_handler_spawned(
    kind: str, tmp_path: Path
) -> None:
    flow, parent, calls = fan_out()

    @parent.finalize
    async def total(job: dict, ctx: JobContext) -> int:  # type: ignore[type-arg]
        results = [int(c.result or 0) for c in await ctx.children()]
        summed = await ctx.step("sum", counter(calls), "sum", sum(results))
        await ctx.sleep("settle", 0.01)  # suspends: the finalize runs again from the top
        return int(summed)

    async with scheduler_on(kind, tmp_path, flow) as s:
        out = await s.submit({}, type="flow::parent")
        assert await s.result(out.id, timeout=10) == 3
        marks = await s.store.checkpoints(out.id)
    assert calls == Counter({"sum": 1}), "a replayed finalize step does not run again"
    assert [m.kind for m in marks] == ["spawn", "spawn", "step", "sleep"]


@pytest.mark.parametrize("kind", KINDS)
async def test_a_finalize_that_failed_replays_its_steps_on_the_retry(
    kind: str, tmp_path: Path
) -> None:
    flow, parent, calls = fan_out(attempts=3)

    @parent.finalize
    async def total(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        await ctx.step("report", counter(calls), "report", "sent")
        if calls["crashed"] == 0:
            calls["crashed"] += 1
            raise RuntimeError("crash after the report")
        await ctx.step("archive", counter(calls), "archive", "done")
        return "finalized"

    async with scheduler_on(kind, tmp_path, flow) as s:
        out = await s.submit({}, type="flow::parent")
        assert await s.result(out.id, timeout=10) == "finalized"
    assert calls == Counter({"report": 1, "crashed": 1, "archive": 1})


@pytest.mark.parametrize("kind", KINDS)
async def test_a_finalize_rerun_that_diverges_fails_loudly(kind: str, tmp_path: Path) -> None:
    flow, parent, calls = fan_out(attempts=3)

    @parent.finalize
    async def total(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        calls["runs"] += 1
        if calls["runs"] == 1:
            await ctx.step("charge", counter(calls), "charge", 1)
            raise RuntimeError("crash after the charge")
        await ctx.step("refund", counter(calls), "refund", 1)

    async with scheduler_on(kind, tmp_path, flow) as s:
        out = await s.submit({}, type="flow::parent")
        with pytest.raises(JobFailed) as failed:
            await s.result(out.id, timeout=10)
    error = failed.value.error or ""
    assert "NonDeterminismError" in error
    assert "durable call #1 of the finalize handler was recorded as step 'charge:" in error
    assert "this run asked for step 'refund:" in error
    assert calls == Counter({"runs": 2, "charge": 1}), "diverging is final: no third run"


async def test_a_finalize_handed_back_by_a_stopping_worker_replays_in_the_next(
    tmp_path: Path,
) -> None:
    flow, parent, calls = fan_out()
    reached = anyio.Event()
    url = f"sqlite:///{tmp_path / 'jobs.db'}"

    @parent.finalize
    async def total(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        await ctx.step("report", counter(calls), "report", "sent")
        if not reached.is_set():
            reached.set()
            await anyio.sleep_forever()  # the first worker stops here
        return "finalized"

    first = Scheduler(url, domains=[flow], poll_interval=0.02, shutdown=ShutdownMode.hard())
    async with running(first) as s:
        out = await s.submit({}, type="flow::parent")
        with anyio.fail_after(10):
            await reached.wait()
    second = Scheduler(url, domains=[flow], poll_interval=0.02)
    async with running(second) as s:
        job = await s.get(out.id)
        assert job is not None and job.phase == "finalize"
        assert job.state in (JobState.PENDING, JobState.RUNNING, JobState.COMPLETED)
        assert await s.result(out.id, timeout=10) == "finalized"
    assert calls == Counter({"report": 1})
