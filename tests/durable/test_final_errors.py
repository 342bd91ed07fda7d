"""Errors a retry cannot change end the job at once, whatever its retry policy: a re-run would
only replay the record that raised them (non-determinism, a joined child's recorded failure or
cancellation, a recorded timeout). Other errors are retried as before."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from durable_support import KINDS, scheduler_on, until_state

from wireframe import Domain, JobContext, JobFailed, JobState, Retry

pytestmark = pytest.mark.anyio

ATTEMPTS = 5


def flow_domain(runs: list[str]) -> Domain:
    flow = Domain("flow")
    retry = Retry.fixed(attempts=ATTEMPTS, delay=0)

    @flow.job(retry=retry)
    async def diverges(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        runs.append("diverges")
        await ctx.step(f"step-{len(runs)}", lambda: None)
        raise RuntimeError("crash after a step")

    @flow.job(retry=retry)
    async def joins_a_failure(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        runs.append("joins_a_failure")
        await ctx.join(await ctx.spawn({}, type="flow::broken"))

    @flow.job(retry=retry)
    async def joins_a_cancelled(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        runs.append("joins_a_cancelled")
        await ctx.join(await ctx.spawn({}, type="flow::idle"))

    @flow.job(retry=retry)
    async def event_times_out(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        runs.append("event_times_out")
        await ctx.wait_event("never", timeout=0.01)

    @flow.job(retry=retry)
    async def defer_times_out(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        runs.append("defer_times_out")
        await ctx.defer_until(lambda: False, poll_interval=0.01, timeout=0.01)

    @flow.job(retry=retry)
    async def plain_error(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        runs.append("plain_error")
        raise RuntimeError("may pass next time")

    @flow.job
    async def broken(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        raise RuntimeError("child broke")

    @flow.job
    async def idle(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        await ctx.sleep("forever", 3600)

    return flow


CASES = [
    ("diverges", "NonDeterminismError", 2),
    ("joins_a_failure", "ChildFailed", 1),
    ("joins_a_cancelled", "ChildCancelled", 1),
    ("event_times_out", "EventTimeout", 1),
    ("defer_times_out", "DeferTimeout", 1),
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("name", "error", "attempts"), CASES)
async def test_an_error_a_retry_cannot_change_fails_the_job_at_once(
    kind: str,
    name: str,
    error: str,
    attempts: int,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs: list[str] = []
    async with scheduler_on(kind, tmp_path, flow_domain(runs)) as s:
        # Not fail_fast: the parent sees its child's end through `join`, whenever it comes.
        out = await s.submit({}, type=f"flow::{name}", fail_fast=False)
        if name == "joins_a_cancelled":
            await until_state(s, out.id, JobState.SUSPENDED)
            [child] = await s.store.list_jobs(parent_id=out.id)
            await s.cancel(child.id)
        with pytest.raises(JobFailed, match=error):
            await s.result(out.id, timeout=10)
        job = await s.get(out.id)
        history = await s.store.attempts(out.id)
    assert job is not None and job.state is JobState.FAILED
    assert job.attempt == attempts, f"{error} was retried"
    assert [a.outcome for a in history] == ["failed"] * attempts
    final = [r for r in caplog.records if r.name == "wireframe.scheduler" and error in r.message]
    assert [r.levelno for r in final] == [logging.ERROR]


@pytest.mark.parametrize("kind", KINDS)
async def test_other_errors_are_still_retried(kind: str, tmp_path: Path) -> None:
    runs: list[str] = []
    async with scheduler_on(kind, tmp_path, flow_domain(runs)) as s:
        out = await s.submit({}, type="flow::plain_error")
        with pytest.raises(JobFailed, match="may pass next time"):
            await s.result(out.id, timeout=10)
    assert runs == ["plain_error"] * ATTEMPTS
