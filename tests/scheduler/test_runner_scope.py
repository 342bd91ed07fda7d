"""A runner reuses one cancel scope across jobs: a job's timeout or cancellation never reaches
the jobs that run after it on the same runner."""

from __future__ import annotations

import math
from typing import Any

import anyio
import attrs
import pytest

from wireframe.scheduler import Domain, JobContext, JobFailed, JobState, Retry, Scheduler
from wireframe.scheduler.domain import JobType
from wireframe.store import ClaimRequest, Complete, Outcome
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Step:
    name: str


async def swallow_timeout(job: Step, ctx: JobContext) -> str:
    """A handler that catches its own timeout and returns: bad manners that must not hurt the
    jobs after it."""
    try:
        await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        return "swallowed"
    return "unreachable"


def one_runner(domain: Domain) -> Scheduler:
    """A single runner, so every job below runs on the same one, one after another."""
    return Scheduler("memory://", domains=[domain], max_concurrency=1)


async def test_a_timed_out_job_leaves_no_deadline_for_the_next_one() -> None:
    d = Domain("d")

    @d.job(timeout=0.05, retry=Retry.none())
    async def hang(job: Step, ctx: JobContext) -> None:
        await anyio.sleep_forever()

    @d.job(retry=Retry.none())  # one attempt: a stray cancellation would fail it
    async def work(job: Step, ctx: JobContext) -> str:
        for _ in range(5):
            await anyio.sleep(0.001)  # a leaked deadline or cancellation would land here
        return job.name

    async with running(one_runner(d)) as s:
        first = await s.submit(Step("a"), type=hang)
        second = await s.submit(Step("b"), type=work)
        with pytest.raises(JobFailed, match="timed out"):
            await s.result(first.id, timeout=10)
        assert await s.result(second.id, timeout=10) == "b"


async def test_a_handler_that_swallows_its_timeout_does_not_doom_the_next_job() -> None:
    d = Domain("d")

    stubborn = d.job(timeout=0.05, retry=Retry.none())(swallow_timeout)

    @d.job(retry=Retry.none())  # one attempt: a stray cancellation would fail it
    async def work(job: Step, ctx: JobContext) -> str:
        for _ in range(5):
            await anyio.sleep(0.001)
        return job.name

    async with running(one_runner(d)) as s:
        first = await s.submit(Step("a"), type=stubborn)
        second = await s.submit(Step("b"), type=work)
        assert await s.result(first.id, timeout=10) == "swallowed"
        assert await s.result(second.id, timeout=10) == "b"


async def test_a_cancelled_job_frees_its_runner_for_the_next_one() -> None:
    d = Domain("d")
    started = anyio.Event()

    @d.job
    async def long(job: Step, ctx: JobContext) -> None:
        started.set()
        await anyio.sleep_forever()

    @d.job(retry=Retry.none())  # one attempt: a stray cancellation would fail it
    async def work(job: Step, ctx: JobContext) -> str:
        for _ in range(5):
            await anyio.sleep(0.001)
        return job.name

    scheduler = Scheduler("memory://", domains=[d], max_concurrency=1, cancel_grace=0)
    async with running(scheduler) as s:
        first = await s.submit(Step("a"), type=long)
        second = await s.submit(Step("b"), type=work)
        await started.wait()
        await s.cancel(first.id)
        assert await s.result(second.id, timeout=10) == "b"
        job = await s.get(first.id)
        assert job is not None and job.state is JobState.CANCELLED


async def test_many_timeouts_in_a_row_each_time_out_on_their_own() -> None:
    d = Domain("d")

    @d.job(timeout=0.02, retry=Retry.none())
    async def hang(job: Step, ctx: JobContext) -> None:
        await anyio.sleep_forever()

    async with running(one_runner(d)) as s:
        ids = [(await s.submit(Step(str(i)), type=hang)).id for i in range(4)]
        for job_id in ids:
            with pytest.raises(JobFailed, match="timed out"):
                await s.result(job_id, timeout=10)
        attempts = [a.outcome for i in ids for a in await s.store.attempts(i)]
        assert attempts == ["timeout"] * 4


async def run_queued(d: Domain, jobs: list[tuple[Step, JobType[Any, Any]]]) -> list[Outcome]:
    """Submit `jobs`, queue them all at once for a single runner, run it, return the outcomes."""
    s = Scheduler("memory://", domains=[d], max_concurrency=1)
    await s.open()
    try:
        for payload, job_type in jobs:
            await s.submit(payload, type=job_type)
        worker = s.worker
        assert worker is not None
        request = ClaimRequest(worker.worker_id, len(jobs), 60.0, worker.domain_names, ())
        executor = worker._executor
        executor.start(await s.store.claim(request), math.inf)
        executor.close()
        executor.runners = 1
        await executor._run_jobs()
        return [outcome for _, outcome in worker._completer.outcomes]
    finally:
        await s.close()


async def test_jobs_queued_behind_a_swallowed_cancellation_run_unharmed() -> None:
    """White-box: with the next job already queued, the runner must not carry the spent
    scope over to it (in the tests above a runner always waits between jobs)."""
    d = Domain("d")

    stubborn = d.job(timeout=0.05, retry=Retry.none())(swallow_timeout)

    @d.job(retry=Retry.none())
    async def work(job: Step, ctx: JobContext) -> str:
        await anyio.sleep(0.001)
        return job.name

    outcomes = await run_queued(d, [(Step("a"), stubborn), (Step("b"), work)])
    assert [type(o).__name__ for o in outcomes] == ["Complete", "Complete"]
    assert [o.result for o in outcomes if isinstance(o, Complete)] == ['"swallowed"', '"b"']


async def test_a_deadline_met_in_time_is_not_left_on_the_runner() -> None:
    """White-box: a job that finishes within its timeout must not leave its deadline to the
    next job on the same runner, which has none and runs past it."""
    d = Domain("d")

    @d.job(timeout=0.05, retry=Retry.none())
    async def quick(job: Step, ctx: JobContext) -> str:
        return job.name

    @d.job(retry=Retry.none())
    async def slow(job: Step, ctx: JobContext) -> str:
        await anyio.sleep(0.15)  # well past the first job's deadline
        return job.name

    outcomes = await run_queued(d, [(Step("a"), quick), (Step("b"), slow)])
    assert [o.result for o in outcomes if isinstance(o, Complete)] == ['"a"', '"b"']
