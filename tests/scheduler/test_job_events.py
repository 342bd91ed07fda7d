"""Each job's events follow what its store really did, on the memory store and on SQLite:
parents wait for their children and end as they really end, every end the store makes on its
own (cascades, tree cancels, lost workers) is published once, spawned children are submitted,
and a failure that is retried says so before it says when."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import anyio
import attrs
import pytest

from wireframe.scheduler import (
    Domain,
    JobBlocked,
    JobCancelled,
    JobCompleted,
    JobContext,
    JobDependencyFailed,
    JobFailedEvent,
    JobRetrying,
    JobStarted,
    JobState,
    JobSubmitted,
    JobWaiting,
    Retry,
    Scheduler,
)
from wireframe.scheduler.events import Event, JobEvent, Subscription
from wireframe.store import ClaimRequest, MemoryStore, NewJob, SqliteStore, Store
from wireframe.testing import running

pytestmark = pytest.mark.anyio

TERMINAL_EVENTS = (JobCompleted, JobCancelled, JobDependencyFailed)


@attrs.frozen
class Step:
    name: str


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Every test here runs on the memory store and on SQLite."""
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"


async def collect(events: Subscription, until: Callable[[list[Event]], bool]) -> list[Event]:
    """Events received until `until(seen)` holds (within 10 s)."""
    seen: list[Event] = []
    with anyio.fail_after(10):
        while not until(seen):
            seen.append(await events.receive())
    return seen


def of(seen: list[Event], job_id: int) -> list[type]:
    """The kinds of the events of one job, in order."""
    return [type(e) for e in seen if isinstance(e, JobEvent) and e.job_id == job_id]


def ended(job_id: int, kind: type = JobEvent) -> Callable[[list[Event]], bool]:
    """True once a terminal event of `kind` about `job_id` arrived."""

    def check(seen: list[Event]) -> bool:
        return any(
            isinstance(e, kind)
            and isinstance(e, JobEvent)
            and e.job_id == job_id
            and (
                isinstance(e, TERMINAL_EVENTS)
                or (isinstance(e, JobFailedEvent) and not e.will_retry)
            )
            for e in seen
        )

    return check


async def drain(events: Subscription) -> list[Event]:
    """What is buffered now, after a moment for stragglers."""
    await anyio.sleep(0.05)
    out: list[Event] = []
    while (event := events.receive_nowait()) is not None:
        out.append(event)
    return out


async def test_a_parent_waits_for_its_real_children_then_completes(store_url: str) -> None:
    flow = Domain("flow")
    gate = anyio.Event()

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        if job.name == "parent":
            await ctx.spawn(Step("child"))
            await ctx.spawn(Step("child"))
        else:
            await gate.wait()

    async with running(Scheduler(store_url, domains=[flow])) as s, s.subscribe() as events:
        parent = await s.submit(Step("parent"))
        seen = await collect(events, lambda seen: JobWaiting in of(seen, parent.id))
        waiting = next(e for e in seen if isinstance(e, JobWaiting))
        assert waiting.job_id == parent.id and waiting.children == 2
        assert JobCompleted not in of(seen, parent.id)
        gate.set()
        seen += await collect(events, ended(parent.id))
    children = [e.job_id for e in seen if isinstance(e, JobSubmitted) and e.job_id != parent.id]
    assert len(children) == 2
    assert of(seen, parent.id) == [JobSubmitted, JobStarted, JobWaiting, JobCompleted]
    last_child = max(
        i for i, e in enumerate(seen) if isinstance(e, JobCompleted) and e.job_id in children
    )
    parent_done = next(
        i for i, e in enumerate(seen) if isinstance(e, JobCompleted) and e.job_id == parent.id
    )
    assert last_child < parent_done
    done = seen[parent_done]
    assert isinstance(done, JobCompleted) and done.duration >= 0.0


async def test_a_parent_whose_child_fails_after_it_returned_ends_failed(store_url: str) -> None:
    flow = Domain("flow")
    gate = anyio.Event()

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        if job.name == "parent":
            await ctx.spawn(Step("child"))
            return
        await gate.wait()
        raise RuntimeError("child broke")

    async with running(Scheduler(store_url, domains=[flow])) as s, s.subscribe() as events:
        parent = await s.submit(Step("parent"))
        seen = await collect(events, lambda seen: JobWaiting in of(seen, parent.id))
        gate.set()
        seen += await collect(events, ended(parent.id))
        seen += await drain(events)
        assert (await s.get(parent.id)).state is JobState.FAILED  # type: ignore[union-attr]
    assert of(seen, parent.id) == [JobSubmitted, JobStarted, JobWaiting, JobFailedEvent]
    failed = [e for e in seen if isinstance(e, JobFailedEvent) and e.job_id == parent.id]
    assert not failed[0].will_retry and "child broke" in failed[0].error
    assert failed[0].attempt == 1


async def test_dependents_ended_by_a_failure_publish_their_end_once(store_url: str) -> None:
    flow = Domain("flow")
    gate = anyio.Event()

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        if job.name == "root":
            await gate.wait()
            raise RuntimeError("root broke")

    async with running(Scheduler(store_url, domains=[flow])) as s, s.subscribe() as events:
        root = await s.submit(Step("root"))
        cancelled = await s.submit(Step("a"), depends_on=[root.id], on_dependency_failure="cancel")
        behind = await s.submit(Step("b"), depends_on=[cancelled.id])
        failed = await s.submit(Step("c"), depends_on=[root.id], on_dependency_failure="fail")
        gate.set()
        seen = await collect(events, ended(failed.id))
        seen += await collect(events, ended(behind.id))
        # Submitted after its dependency failed: it is born ended.
        late = await s.submit(Step("d"), depends_on=[root.id], on_dependency_failure="fail")
        seen += await collect(events, ended(late.id))
        seen += await drain(events)
    assert of(seen, cancelled.id) == [JobSubmitted, JobBlocked, JobCancelled]
    assert of(seen, behind.id) == [JobSubmitted, JobBlocked, JobCancelled]
    assert of(seen, failed.id) == [JobSubmitted, JobBlocked, JobDependencyFailed]
    assert of(seen, late.id) == [JobSubmitted, JobDependencyFailed]
    for job_id in (failed.id, late.id):
        end = next(e for e in seen if isinstance(e, JobDependencyFailed) and e.job_id == job_id)
        assert end.dependency == root.id and f"job {root.id}" in end.error
    root_end = next(
        i for i, e in enumerate(seen) if isinstance(e, JobFailedEvent) and e.job_id == root.id
    )
    assert all(
        root_end < i
        for i, e in enumerate(seen)
        if isinstance(e, JobCancelled | JobDependencyFailed) and e.job_id != late.id
    )


async def test_cancelling_a_tree_publishes_every_job_cancelled_once(store_url: str) -> None:
    flow = Domain("flow")
    started = anyio.Event()

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        if job.name == "running parent":
            await ctx.spawn(Step("later"), delay=60)
            started.set()
            await anyio.sleep_forever()
        if job.name == "waiting parent":
            await ctx.spawn(Step("later"), delay=60)

    scheduler = Scheduler(store_url, domains=[flow], cancel_grace=0.0)
    async with running(scheduler) as s, s.subscribe() as events:
        busy = await s.submit(Step("running parent"))
        idle = await s.submit(Step("waiting parent"))
        with anyio.fail_after(10):
            await started.wait()
        await collect(events, lambda seen: JobWaiting in of(seen, idle.id))
        assert await s.cancel(busy.id) is JobState.RUNNING  # asked to stop: it ends cancelled
        assert await s.cancel(idle.id) is JobState.CANCELLED
        seen = await collect(events, ended(busy.id))
        seen += await drain(events)
        jobs = await s.jobs(limit=10)
    assert [j.state for j in jobs] == [JobState.CANCELLED] * 4
    for job in jobs:
        assert of(seen, job.id).count(JobCancelled) == 1, job
        assert of(seen, job.id)[-1] is JobCancelled


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_job_whose_worker_was_lost_too_often_publishes_its_failure(
    kind: str, tmp_path: Path
) -> None:
    clock = [time.time()]
    store: Store
    if kind == "memory":
        store = MemoryStore(clock=lambda: clock[0])
    else:
        store = SqliteStore(tmp_path / "jobs.db", clock=lambda: clock[0])
    await store.open()
    [job] = await store.submit(
        [NewJob(type="flow::step", domain="flow", payload='{"name":"x"}', max_reclaims=0)]
    )
    await store.claim(ClaimRequest("dead-worker", 1, 5.0, ("flow",)))
    clock[0] += 10  # its worker is gone: the lease runs out
    flow = Domain("flow")

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        raise AssertionError("a job that gave up never runs")

    async with running(Scheduler(store, domains=[flow])) as s, s.subscribe() as events:
        seen = await collect(events, ended(job.id))
        seen += await drain(events)
    assert of(seen, job.id) == [JobFailedEvent]
    [end] = [e for e in seen if isinstance(e, JobFailedEvent)]
    assert "gave up after max_reclaims=0" in end.error and not end.will_retry


async def test_a_retried_failure_says_so_before_it_says_when(store_url: str) -> None:
    flow = Domain("flow")
    tries: list[int] = []

    @flow.job(retry=Retry.fixed(attempts=2, delay=0.0))
    async def step(job: Step, ctx: JobContext) -> None:
        tries.append(ctx.job.attempt)
        if len(tries) == 1:
            raise RuntimeError("first try fails")

    async with running(Scheduler(store_url, domains=[flow])) as s, s.subscribe() as events:
        job = await s.submit(Step("x"))
        seen = await collect(events, ended(job.id))
    assert of(seen, job.id) == [
        JobSubmitted,
        JobStarted,
        JobFailedEvent,
        JobRetrying,
        JobStarted,
        JobCompleted,
    ]
    failed = next(e for e in seen if isinstance(e, JobFailedEvent))
    assert failed.will_retry and failed.attempt == 1 and "first try fails" in failed.error


async def test_spawned_children_are_submitted_before_anything_else(store_url: str) -> None:
    flow = Domain("flow")

    @flow.job
    async def step(job: Step, ctx: JobContext) -> None:
        if job.name == "parent":
            first = await ctx.spawn(Step("first"))
            await ctx.spawn(Step("second"), depends_on=[first.id])

    async with running(Scheduler(store_url, domains=[flow])) as s, s.subscribe() as events:
        parent = await s.submit(Step("parent"))
        seen = await collect(events, ended(parent.id))
    kids = [e.job_id for e in seen if isinstance(e, JobSubmitted) and e.job_id != parent.id]
    assert len(kids) == 2
    assert of(seen, kids[0]) == [JobSubmitted, JobStarted, JobCompleted]
    assert of(seen, kids[1])[:2] == [JobSubmitted, JobBlocked]
    assert of(seen, kids[1])[-1] is JobCompleted
    submitted = next(e for e in seen if isinstance(e, JobSubmitted) and e.job_id == kids[0])
    assert submitted.job_type == "flow::step"
