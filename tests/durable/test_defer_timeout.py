"""`ctx.defer_until(..., timeout=)`: the deadline is recorded on the first run, so a re-run
(after a crash, a pause, a suspension) keeps it; once it passes without the condition coming
true, the handler gets a DeferTimeout it may catch, and a re-run gets the same outcome."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import anyio
import pytest
from durable_support import KINDS, scheduler_on, until_state

from wireframe import DeferTimeout, Domain, JobContext, JobState
from wireframe.durable import DurableError

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("kind", KINDS)
async def test_a_timeout_raises_a_catchable_defer_timeout_that_a_rerun_replays(
    kind: str, tmp_path: Path
) -> None:
    flow = Domain("flow")
    polls: Counter[int] = Counter()
    outcomes: list[str] = []

    @flow.job
    async def waits(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        run = len(outcomes) + 1

        def never() -> bool:
            polls[run] += 1
            return False

        try:
            await ctx.defer_until(never, poll_interval=0.01, timeout=0.05)
            outcome = "met"
        except DeferTimeout as exc:
            assert isinstance(exc, TimeoutError) and isinstance(exc, DurableError)
            outcome = f"timed out: {exc}"
        outcomes.append(outcome)
        await ctx.sleep("after", 0.01)  # suspends: the job runs again from the top
        return outcome

    async with scheduler_on(kind, tmp_path, flow) as s:
        out = await s.submit({}, type="flow::waits")
        result = await s.result(out.id, timeout=10)
    assert (
        result == f"timed out: job {out.id} (flow::waits): defer_until: the condition did "
        "not come true within 0.05s"
    )
    assert outcomes == [result, result]
    assert polls[1] >= 1 and polls[2] == 0, "the re-run replays the recorded timeout"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_condition_met_in_time_is_recorded_and_not_polled_again(
    kind: str, tmp_path: Path
) -> None:
    flow = Domain("flow")
    polls: Counter[int] = Counter()
    runs: list[str] = []

    @flow.job
    async def waits(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        run = len(runs) + 1

        def third_time() -> bool:
            polls[run] += 1
            return polls[run] >= 3

        await ctx.defer_until(third_time, poll_interval=0.01, timeout=600)
        runs.append("past")
        await ctx.sleep("after", 0.01)
        return "done"

    async with scheduler_on(kind, tmp_path, flow) as s:
        out = await s.submit({}, type="flow::waits")
        assert await s.result(out.id, timeout=10) == "done"
        mark = (await s.store.checkpoints(out.id))[0]
    assert polls == Counter({1: 3}) and runs == ["past", "past"]
    assert mark.kind == "defer" and json.loads(mark.value or "{}")["done"] is True


@pytest.mark.parametrize("kind", KINDS)
async def test_the_deadline_is_kept_across_runs(kind: str, tmp_path: Path) -> None:
    """A job paused while deferred runs again from the top when resumed: its deadline is the
    one recorded by the first run, not a new one."""
    flow = Domain("flow")
    polls: Counter[int] = Counter()
    runs = 0

    @flow.job
    async def waits(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        nonlocal runs
        runs += 1
        run = runs

        def never() -> bool:
            polls[run] += 1
            return False

        try:
            await ctx.defer_until(never, poll_interval=0.01, timeout=0.3)
        except DeferTimeout:
            return "timed out"
        return "met"

    async with scheduler_on(kind, tmp_path, flow) as s:
        out = await s.submit({}, type="flow::waits")
        with anyio.fail_after(10):
            while (await s.snapshot()).deferred == 0:
                await anyio.sleep(0.01)
        [mark] = await s.store.checkpoints(out.id)
        deadline = json.loads(mark.value or "{}")["deadline"]
        await s.pause(out.id)
        await until_state(s, out.id, JobState.PAUSED)
        while time.time() <= deadline:  # the recorded deadline passes while it is paused
            await anyio.sleep(0.05)
        await s.resume(out.id)
        assert await s.result(out.id, timeout=10) == "timed out"
        [mark] = await s.store.checkpoints(out.id)
    assert runs == 2
    assert polls[2] == 1, "the second run checks once, at a deadline already passed"
    state = json.loads(mark.value or "{}")
    assert state["deadline"] == deadline and state["timed_out"] is True
