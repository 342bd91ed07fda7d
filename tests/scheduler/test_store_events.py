"""Events for moves the store makes on its own: blocked, unblocked, expired."""

from __future__ import annotations

import time

import anyio
import attrs
import pytest

from wireframe.scheduler import (
    Domain,
    JobBlocked,
    JobCompleted,
    JobContext,
    JobExpired,
    JobStarted,
    JobState,
    JobUnblocked,
    Scheduler,
)
from wireframe.scheduler.events import Event
from wireframe.store import InvalidTransitionError, MemoryStore, Transition
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Step:
    name: str


async def test_a_dependent_job_is_reported_blocked_then_unblocked_then_started() -> None:
    flow = Domain("flow")
    gate = anyio.Event()

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        if job.name == "first":
            await gate.wait()

    async with running(Scheduler("memory://", domains=[flow])) as s, s.subscribe() as events:
        first = await s.submit(Step("first"))
        second = await s.submit(Step("second"), depends_on=[first.id])
        seen: list[Event] = []
        with anyio.fail_after(10):
            async for event in events:
                seen.append(event)
                if isinstance(event, JobBlocked):
                    gate.set()
                if isinstance(event, JobCompleted) and event.job_id == second.id:
                    break
    about_second = [e for e in seen if getattr(e, "job_id", None) == second.id]
    kinds = [type(e) for e in about_second]
    assert JobBlocked in kinds and JobUnblocked in kinds
    assert kinds.index(JobBlocked) < kinds.index(JobUnblocked) < kinds.index(JobStarted)
    blocked = about_second[kinds.index(JobBlocked)]
    assert isinstance(blocked, JobBlocked)
    assert blocked.depends_on == (first.id,) and blocked.job_type == "flow::step"
    first_done = next(
        i for i, e in enumerate(seen) if isinstance(e, JobCompleted) and e.job_id == first.id
    )
    unblocked = next(i for i, e in enumerate(seen) if isinstance(e, JobUnblocked))
    assert first_done < unblocked


async def test_a_job_whose_ttl_ran_out_is_reported_expired_and_never_runs() -> None:
    flow = Domain("flow")
    release = anyio.Event()
    ran: list[str] = []
    clock = [time.time()]

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        ran.append(job.name)
        if job.name == "blocker":
            await release.wait()

    store = MemoryStore(clock=lambda: clock[0])
    scheduler = Scheduler(store, domains=[flow], max_concurrency=1, poll_interval=0.05)
    async with running(scheduler) as s, s.subscribe() as events:
        blocker = await s.submit(Step("blocker"))
        late = await s.submit(Step("late"), ttl=5)
        with anyio.fail_after(10):
            async for event in events:
                if isinstance(event, JobStarted) and event.job_id == blocker.id:
                    break
        clock[0] += 10  # the store's clock passes the ttl while the only slot is busy
        release.set()
        with anyio.fail_after(10):
            async for event in events:
                if isinstance(event, JobExpired):
                    assert event.job_id == late.id and event.job_type == "flow::step"
                    break
        job = await s.get(late.id)
        assert job is not None and job.state is JobState.EXPIRED
    assert ran == ["blocker"]


async def test_store_observers_get_committed_transitions_only() -> None:
    store = MemoryStore()
    await store.open()
    seen: list[Transition] = []
    store.observe(seen.extend)
    from wireframe.store import NewJob

    [a] = await store.submit([NewJob(type="d::j", domain="d", payload="{}")])
    [b] = await store.submit([NewJob(type="d::j", domain="d", payload="{}", depends_on=(a.id,))])
    assert seen == [Transition(b.id, "d::j", JobState.BLOCKED, (a.id,))]
    # A submit that fails (an unknown dependency) is rolled back and reports nothing.
    with pytest.raises(Exception, match="999"):
        await store.submit(
            [
                NewJob(type="d::j", domain="d", payload="{}", depends_on=(a.id,)),
                NewJob(type="d::j", domain="d", payload="{}", depends_on=(999,)),
            ]
        )
    assert len(seen) == 1
    store.unobserve(seen.extend)
    await store.submit([NewJob(type="d::j", domain="d", payload="{}", depends_on=(a.id,))])
    assert len(seen) == 1
    await store.close()


async def test_a_dependency_failed_job_retried_after_its_dependency_waits_for_it() -> None:
    flow = Domain("flow")
    ran: list[str] = []
    release = anyio.Event()

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        ran.append(job.name)
        if job.name == "flaky" and ran.count("flaky") == 1:
            raise RuntimeError("fails the first time")
        if job.name == "flaky":
            await release.wait()

    async with running(Scheduler("memory://", domains=[flow])) as s, s.subscribe() as events:
        flaky = await s.submit(Step("flaky"))
        after = await s.submit(Step("after"), depends_on=[flaky.id], on_dependency_failure="fail")
        with anyio.fail_after(10):
            # The failure is published before the worker writes it; the cascade comes with it.
            while (await s.get(after.id)).state is not JobState.DEPENDENCY_FAILED:  # type: ignore[union-attr]
                await anyio.sleep(0.01)
        with pytest.raises(InvalidTransitionError, match=rf"job {flaky.id} \(failed\)"):
            await s.retry(after.id)
        await s.retry(flaky.id)
        with anyio.fail_after(10):
            async for event in events:
                if isinstance(event, JobStarted) and event.job_id == flaky.id:
                    break
        await s.retry(after.id)
        seen: list[Event] = []
        with anyio.fail_after(10):
            async for event in events:
                seen.append(event)
                if isinstance(event, JobBlocked):
                    release.set()
                if isinstance(event, JobCompleted) and event.job_id == after.id:
                    break
    kinds = [(type(e), getattr(e, "job_id", None)) for e in seen]
    assert kinds.index((JobBlocked, after.id)) < kinds.index((JobCompleted, flaky.id))
    assert kinds.index((JobCompleted, flaky.id)) < kinds.index((JobUnblocked, after.id))
    assert kinds.index((JobUnblocked, after.id)) < kinds.index((JobStarted, after.id))
    assert ran == ["flaky", "flaky", "after"]
