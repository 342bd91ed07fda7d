"""`ctx.join` takes only the joining job's own children: any other job fails it, naming both ids.

A job that is not a child never wakes a joiner (only a child's end does), so joining one would
wait forever; joining another job's child would read a result that is not the caller's.
"""

from __future__ import annotations

import pytest

from wireframe import ChildFailed, Domain, JobContext, JobFailed, JobState, Scheduler
from wireframe.durable import ChildHandle, DurableError
from wireframe.testing import running

pytestmark = pytest.mark.anyio


def scheduler(*domains: Domain) -> Scheduler:
    return Scheduler("memory://", domains=list(domains), poll_interval=0.02)


def flow_domain() -> Domain:
    flow = Domain("flow")

    @flow.job
    async def joiner(job: dict, ctx: JobContext) -> object:  # type: ignore[type-arg]
        return await ctx.join(ChildHandle(int(job["other"])))

    @flow.job
    async def careful(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        try:
            await ctx.join(ChildHandle(int(job["other"])))
        except ChildFailed:
            return "ChildFailed"
        except DurableError as exc:
            return f"DurableError: {exc}"
        return "joined"

    @flow.job
    async def parent(job: dict, ctx: JobContext) -> object:  # type: ignore[type-arg]
        return await ctx.join(await ctx.spawn({}, type="flow::child"))

    @flow.job
    async def child(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        return "child result"

    @flow.job
    async def idle(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        raise AssertionError("never due in this test")

    return flow


def assert_names_both(error: str | None, other: int, joiner: int) -> None:
    assert error is not None
    assert f"job {other} is not a child of job {joiner}" in error, error


async def test_join_of_a_job_that_is_no_child_fails_the_joiner() -> None:
    async with running(scheduler(flow_domain())) as s:
        stranger = await s.submit({}, type="flow::idle", delay=3600)
        out = await s.submit({"other": stranger.id}, type="flow::joiner")
        with pytest.raises(JobFailed) as info:
            await s.result(out.id, timeout=10)
        assert info.value.state == JobState.FAILED
        assert_names_both(info.value.error, stranger.id, out.id)
        record = await s.get(out.id)
        assert record is not None and record.state is JobState.FAILED
        assert_names_both(record.error, stranger.id, out.id)
        assert [c.kind for c in await s.store.checkpoints(out.id)] == []
        other = await s.get(stranger.id)
        assert other is not None and other.state is JobState.SCHEDULED


async def test_join_of_another_jobs_finished_child_fails_instead_of_reading_its_result() -> None:
    async with running(scheduler(flow_domain())) as s:
        owner = await s.submit({}, type="flow::parent")
        assert await s.result(owner.id, timeout=10) == "child result"
        [kid] = await s.store.list_jobs(parent_id=owner.id)
        assert kid.state is JobState.COMPLETED
        out = await s.submit({"other": kid.id}, type="flow::joiner")
        with pytest.raises(JobFailed) as info:
            await s.result(out.id, timeout=10)
        assert_names_both(info.value.error, kid.id, out.id)
        assert [c.kind for c in await s.store.checkpoints(out.id)] == []


async def test_join_of_a_job_that_is_no_child_raises_durable_error_in_the_handler() -> None:
    async with running(scheduler(flow_domain())) as s:
        stranger = await s.submit({}, type="flow::idle", delay=3600)
        out = await s.submit({"other": stranger.id}, type="flow::careful")
        message = await s.result(out.id, timeout=10)
        assert message.startswith("DurableError: "), message
        assert_names_both(message, stranger.id, out.id)
        assert "join the handles that ctx.spawn returned" in message
