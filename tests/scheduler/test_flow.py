"""Scheduler flows: dependencies, children, cancellation, pause, preemption, schedules, shutdown."""

from __future__ import annotations

import anyio
import attrs
import pytest

from wireframe.scheduler import (
    Domain,
    Every,
    JobCompleted,
    JobContext,
    JobFailed,
    JobStarted,
    JobState,
    JobSubmitted,
    Priority,
    Scheduler,
    SchedulerError,
    ShutdownMode,
)
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Step:
    name: str
    fail: bool = False


async def test_dependencies_run_in_order_and_cancel_on_failure() -> None:
    flow = Domain("flow")
    order: list[str] = []

    @flow.job
    async def step(job: Step, ctx: JobContext) -> str:
        order.append(job.name)
        if job.fail:
            raise RuntimeError("step failed")
        return job.name

    async with running(Scheduler("memory://", domains=[flow], max_concurrency=4)) as s:
        gate = anyio.Event()

        a = await s.submit(Step("a"), delay=0.1)
        b = await s.submit(Step("b"), depends_on=[a.id])
        assert (await s.get(b.id)).state is JobState.BLOCKED  # type: ignore[union-attr]
        await s.result(b.id, timeout=10)
        assert order == ["a", "b"]
        gate.set()

        bad = await s.submit(Step("bad", fail=True), delay=0.2)
        cancel_dep = await s.submit(Step("never"), depends_on=[bad.id])
        chained = await s.submit(Step("never2"), depends_on=[cancel_dep.id])
        fail_dep = await s.submit(Step("never3"), depends_on=[bad.id], on_dependency_failure="fail")
        after_fail = await s.submit(Step("held"), depends_on=[fail_dep.id])
        ignore_dep = await s.submit(
            Step("anyway"), depends_on=[bad.id], on_dependency_failure="ignore"
        )
        assert await s.result(ignore_dep.id, timeout=10) == "anyway"
        for job_id, state in [
            (cancel_dep.id, JobState.CANCELLED),
            (chained.id, JobState.CANCELLED),
            (fail_dep.id, JobState.DEPENDENCY_FAILED),
        ]:
            with pytest.raises(JobFailed):
                await s.result(job_id, timeout=10)
            assert (await s.get(job_id)).state is state  # type: ignore[union-attr]
        assert (await s.get(after_fail.id)).state is JobState.BLOCKED  # type: ignore[union-attr]
        assert "never" not in order


async def test_children_then_finalize_runs_once_with_their_results() -> None:
    flow = Domain("flow")
    finalized: list[list[str]] = []

    @flow.job
    async def parent(job: Step, ctx: JobContext) -> str:
        with pytest.raises(SchedulerError, match="no parent"):
            await ctx.spawn_sibling(Step("x"), type="flow::child")
        for i in range(2):
            await ctx.spawn(Step(f"{job.name}.{i}"), type="flow::child")
        return "spawned"

    @parent.finalize
    async def done(job: Step, ctx: JobContext) -> list[str]:
        kids = await ctx.children()
        results = sorted(str(k.result) for k in kids)
        finalized.append(results)
        return results

    @flow.job
    async def child(job: Step, ctx: JobContext) -> str:
        if job.name == "p.1":
            await ctx.spawn_sibling(Step("p.2"), type="flow::child")
        return job.name

    async with running(Scheduler("memory://", domains=[flow], max_concurrency=4)) as s:
        out = await s.submit(Step("p"), type="flow::parent")
        result = await s.result(out.id, timeout=10)
    assert result == ['"p.0"', '"p.1"', '"p.2"']
    assert len(finalized) == 1


async def test_fail_fast_child_failure_cancels_siblings_and_fails_parent() -> None:
    flow = Domain("flow")
    gate = anyio.Event()

    @flow.job
    async def parent(job: Step, ctx: JobContext) -> None:
        await ctx.spawn(Step("slow"), type="flow::child")
        await ctx.spawn(Step("bad", fail=True), type="flow::child")

    @flow.job
    async def child(job: Step, ctx: JobContext) -> None:
        if job.fail:
            raise RuntimeError("child failed")
        await gate.wait()

    async with running(
        Scheduler("memory://", domains=[flow], max_concurrency=4, cancel_grace=0.01)
    ) as s:
        out = await s.submit(Step("p"), type="flow::parent")
        with pytest.raises(JobFailed, match="child job"):
            await s.result(out.id, timeout=10)
        kids = await s.store.list_jobs(parent_id=out.id)
        for kid in kids:
            with pytest.raises(JobFailed):
                await s.result(kid.id, timeout=10)
        kids = await s.store.list_jobs(parent_id=out.id)
        assert {k.state for k in kids} == {JobState.FAILED, JobState.CANCELLED}


async def test_cancel_running_job_sets_flag_then_cancels() -> None:
    flow = Domain("flow")
    started = anyio.Event()
    saw_flag = anyio.Event()

    @flow.job
    async def stubborn(job: Step, ctx: JobContext) -> None:
        started.set()
        while not ctx.cancelled:
            await anyio.sleep(0.005)
        saw_flag.set()
        await anyio.sleep_forever()

    async with running(Scheduler("memory://", domains=[flow], cancel_grace=0.05)) as s:
        out = await s.submit(Step("x"))
        await started.wait()
        await s.cancel(out.id)
        await saw_flag.wait()
        with pytest.raises(JobFailed, match="cancelled"):
            await s.result(out.id, timeout=10)
        assert (await s.get(out.id)).state is JobState.CANCELLED  # type: ignore[union-attr]


async def test_pause_and_resume_a_tree() -> None:
    flow = Domain("flow")
    ran: list[str] = []

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        ran.append(job.name)

    s = Scheduler("memory://", domains=[flow])
    await s.open()
    out = await s.submit(Step("p"))
    assert await s.pause(out.id) == 1
    async with running(s):
        other = await s.submit(Step("other"))
        await s.result(other.id, timeout=10)
        assert ran == ["other"]
        assert (await s.get(out.id)).state is JobState.PAUSED  # type: ignore[union-attr]
        await s.resume(out.id)
        await s.result(out.id, timeout=10)
    assert ran == ["other", "p"]


async def test_higher_priority_preempts_a_preemptible_job_without_spending_an_attempt() -> None:
    flow = Domain("flow")
    low_started = anyio.Event()
    runs: list[str] = []

    @flow.job(preemptible=True)
    async def background(job: Step, ctx: JobContext) -> int:
        runs.append("low")
        low_started.set()
        if len(runs) == 1:
            await anyio.sleep_forever()
        return ctx.job.attempt

    @flow.job
    async def urgent(job: Step, ctx: JobContext) -> None:
        runs.append("high")

    async with running(Scheduler("memory://", domains=[flow], max_concurrency=1)) as s:
        low = await s.submit(Step("low"), type="flow::background", priority=Priority.LOW)
        await low_started.wait()
        high = await s.submit(Step("high"), type="flow::urgent", priority=Priority.HIGH)
        await s.result(high.id, timeout=10)
        assert await s.result(low.id, timeout=10) == 1
    assert runs == ["low", "high", "low"]


async def test_every_schedule_fires_max_occurrences_times() -> None:
    flow = Domain("flow")
    count = 0
    done = anyio.Event()

    @flow.job
    async def tick(job: Step, ctx: JobContext) -> None:
        nonlocal count
        count += 1
        if count == 3:
            done.set()

    async with running(Scheduler("memory://", domains=[flow], poll_interval=0.02)) as s:
        out = await s.submit(Step("t"), recurring=Every(0.05, max_occurrences=3))
        assert out.schedule_id is not None  # type: ignore[union-attr]
        with anyio.fail_after(10):
            await done.wait()
        [schedule] = await s.schedules()
        assert schedule.state == "finished" and schedule.occurrences == 3


async def test_hard_shutdown_puts_running_jobs_back_to_pending() -> None:
    flow = Domain("flow")
    started = anyio.Event()

    @flow.job
    async def forever(job: Step, ctx: JobContext) -> None:
        started.set()
        await anyio.sleep_forever()

    s = Scheduler("memory://", domains=[flow], shutdown=ShutdownMode.hard())
    stop = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(s.run, stop)
        await s.open()
        out = await s.submit(Step("x"))
        await started.wait()
        stop._request(StopReason(StopReasonKind.REQUESTED))
        # The store is the memory store: keep it open to inspect after the run.
        s._hub.opened = False
    job = await s.store.get(out.id)
    assert job is not None and job.state is JobState.PENDING and job.attempt == 1


async def test_graceful_shutdown_lets_running_jobs_finish() -> None:
    flow = Domain("flow")
    started = anyio.Event()
    finished: list[bool] = []

    @flow.job
    async def short(job: Step, ctx: JobContext) -> None:
        started.set()
        await anyio.sleep(0.05)
        finished.append(True)

    s = Scheduler("memory://", domains=[flow], shutdown=ShutdownMode.graceful(5))
    stop = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(s.run, stop)
        await s.open()
        out = await s.submit(Step("x"))
        await started.wait()
        stop._request(StopReason(StopReasonKind.REQUESTED))
        s._hub.opened = False
    assert finished == [True]
    job = await s.store.get(out.id)
    assert job is not None and job.state is JobState.COMPLETED


async def test_subscribe_sees_the_lifecycle_in_order() -> None:
    flow = Domain("flow")

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        ctx.progress(0.5, "half")

    async with running(Scheduler("memory://", domains=[flow])) as s, s.subscribe() as events:
        out = await s.submit(Step("x"))
        seen = []
        with anyio.fail_after(10):
            async for event in events:
                if getattr(event, "job_id", None) == out.id:
                    seen.append(type(event).__name__)
                if isinstance(event, JobCompleted):
                    break
    assert seen == ["JobSubmitted", "JobStarted", "JobProgress", "JobCompleted"]
    assert JobSubmitted and JobStarted


async def test_ttl_expires_a_job_not_started_in_time() -> None:
    flow = Domain("flow")
    release = anyio.Event()
    ran: list[str] = []

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        ran.append(job.name)
        if job.name == "blocker":
            await release.wait()

    async with running(Scheduler("memory://", domains=[flow], max_concurrency=1)) as s:
        blocker = await s.submit(Step("blocker"))
        late = await s.submit(Step("late"), ttl=0.05)
        await anyio.sleep(0.1)  # let the ttl run out while the only slot is busy
        release.set()
        await s.result(blocker.id, timeout=10)
        with pytest.raises(JobFailed, match="expired"):
            await s.result(late.id, timeout=10)
    assert ran == ["blocker"]
