"""Property: every job's events are a path of its state machine that ends with its end.

Random job graphs run on a Scheduler, on the memory store and on the SQL engine (SQLite): root
jobs that depend on earlier ones under each policy, handlers that spawn children (which spawn
their own), fail some attempts (retried once) and report progress, and cancels at random
moments. Jobs left blocked for good (behind a dependency the "fail" policy ended) are
cancelled at the end. Then, for every job in the store, its events (in order) must be a valid
path from `JobSubmitted`, with exactly one terminal event, last, matching its final state.
"""

from __future__ import annotations

from collections.abc import Mapping

import anyio
import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wireframe.scheduler import (
    Domain,
    JobContext,
    JobState,
    Retry,
    Scheduler,
)
from wireframe.scheduler.events import (
    Event,
    JobBlocked,
    JobCancelled,
    JobCompleted,
    JobDependencyFailed,
    JobEvent,
    JobExpired,
    JobFailedEvent,
    JobPreempted,
    JobProgress,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSuspended,
    JobUnblocked,
    JobWaiting,
    Subscription,
)
from wireframe.store import MemoryStore, SqliteMemoryStore, Store

# -- the state machine of a job's events ----------------------------------------------------

RUNNING = {"progress", "waiting", "completed", "failed", "retried", "cancelled", "preempted"}
NEXT: dict[str, set[str]] = {
    "new": {"submitted"},
    "submitted": {"blocked", "started", "cancelled", "dependency_failed", "expired"},
    "blocked": {"unblocked", "cancelled", "dependency_failed"},
    "unblocked": {"started", "cancelled", "expired"},
    "started": RUNNING | {"suspended"},
    "progress": RUNNING | {"suspended"},
    "waiting": {"started", "completed", "failed", "cancelled"},  # finalize, or a child's end
    "retried": {"retrying"},  # JobFailedEvent(will_retry=True) comes right before JobRetrying
    "retrying": {"started", "cancelled", "failed"},  # failed: a child failed it (fail_fast)
    "preempted": {"started", "cancelled"},
    "suspended": {"started", "cancelled"},
}
ENDS = {
    "completed": JobState.COMPLETED,
    "failed": JobState.FAILED,
    "cancelled": JobState.CANCELLED,
    "expired": JobState.EXPIRED,
    "dependency_failed": JobState.DEPENDENCY_FAILED,
}
KINDS: dict[type, str] = {
    JobSubmitted: "submitted",
    JobBlocked: "blocked",
    JobUnblocked: "unblocked",
    JobStarted: "started",
    JobProgress: "progress",
    JobWaiting: "waiting",
    JobCompleted: "completed",
    JobRetrying: "retrying",
    JobCancelled: "cancelled",
    JobExpired: "expired",
    JobDependencyFailed: "dependency_failed",
    JobPreempted: "preempted",
    JobSuspended: "suspended",
}


def step_of(event: JobEvent) -> str:
    """The state-machine step an event stands for."""
    if isinstance(event, JobFailedEvent):
        return "retried" if event.will_retry else "failed"
    return KINDS[type(event)]


def check_path(job_id: int, final: JobState, steps: list[str]) -> None:
    """`steps` is a valid path from a new job that ends with the end `final`."""
    where = f"job {job_id} ({final}): {steps}"
    state = "new"
    for i, step in enumerate(steps):
        assert state not in ENDS, f"{where}: {step!r} after its end"
        assert step in NEXT[state], f"{where}: {step!r} (#{i}) cannot follow {state!r}"
        state = step
    assert state in ENDS and ENDS[state] is final, f"{where}: does not end as {final}"


# -- random graphs ------------------------------------------------------------------------


@attrs.frozen
class Spec:
    """What a job's handler does: spawn children, then fail its first `fails` attempts."""

    fails: int
    fail_fast: bool
    children: tuple[Spec, ...] = ()


@attrs.frozen
class Root:
    spec: Spec
    depends_on: tuple[tuple[int, str], ...]
    """(index of an earlier root, on_dependency_failure)."""


@attrs.frozen
class Graph:
    roots: tuple[Root, ...]
    cancels: tuple[tuple[int, int], ...]
    """(root index, how many events to receive before cancelling it)."""


@attrs.frozen
class Node:
    path: str


specs = st.recursive(
    st.builds(Spec, fails=st.integers(0, 2), fail_fast=st.booleans()),
    lambda kids: st.builds(
        Spec,
        fails=st.integers(0, 2),
        fail_fast=st.booleans(),
        children=st.lists(kids, max_size=2).map(tuple),
    ),
    max_leaves=4,
)
POLICIES = st.sampled_from(["cancel", "fail", "ignore"])


@st.composite
def graphs(draw: st.DrawFn) -> Graph:
    count = draw(st.integers(1, 4))
    roots = []
    for i in range(count):
        earlier = st.integers(0, i - 1) if i else st.nothing()
        deps = draw(st.lists(st.tuples(earlier, POLICIES), max_size=2 if i else 0))
        roots.append(Root(draw(specs), tuple(dict(deps).items())))
    cancels = draw(st.lists(st.tuples(st.integers(0, count - 1), st.integers(0, 20)), max_size=2))
    return Graph(tuple(roots), tuple(cancels))


def flatten(spec: Spec, path: str, table: dict[str, Spec]) -> None:
    """Every spec of a tree, by its path (`0`, `0.1`, `0.1.0`, ...)."""
    table[path] = spec
    for i, child in enumerate(spec.children):
        flatten(child, f"{path}.{i}", table)


# -- running one graph --------------------------------------------------------------------


def scheduler_for(store: Store, table: Mapping[str, Spec]) -> Scheduler:
    flow = Domain("flow")

    @flow.job(retry=Retry.fixed(attempts=2, delay=0.0))
    async def node(job: Node, ctx: JobContext) -> None:
        spec = table[job.path]
        for i, child in enumerate(spec.children):
            await ctx.spawn(Node(f"{job.path}.{i}"), fail_fast=child.fail_fast)
        ctx.progress(0.5)
        if ctx.job.attempt <= spec.fails:
            raise RuntimeError(f"{job.path} fails attempt {ctx.job.attempt}")

    return Scheduler(store, domains=[flow], max_concurrency=4, cancel_grace=0.0)


async def run_graph(store: Store, graph: Graph) -> tuple[list[Event], dict[int, JobState]]:
    """Run the graph to its end; every event published, and every job's final state."""
    table: dict[str, Spec] = {}
    for i, root in enumerate(graph.roots):
        flatten(root.spec, str(i), table)
    scheduler = scheduler_for(store, table)
    seen: list[Event] = []
    async with anyio.create_task_group() as tg:
        stop = anyio.Event()
        events = scheduler.subscribe(buffer=100_000)
        tg.start_soon(_serve, scheduler, stop)
        ids: list[int] = []
        for i, root in enumerate(graph.roots):
            deps = root.depends_on
            submitted = await scheduler.submit(
                Node(str(i)),
                depends_on=[ids[d] for d, _ in deps],
                on_dependency_failure=deps[0][1] if deps else "cancel",
                fail_fast=root.spec.fail_fast,
            )
            ids.append(submitted.id)
        with anyio.fail_after(20):
            await _drive(scheduler, events, seen, graph, ids)
        final = {job.id: job.state for job in await store.list_jobs(limit=10_000)}
        stop.set()
    while (event := events.receive_nowait()) is not None:  # held until the last write ended
        seen.append(event)
    events.close()
    return seen, final


async def _serve(scheduler: Scheduler, stop: anyio.Event) -> None:
    from wireframe.service import StopReason, StopReasonKind, StopReceiver

    receiver = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, receiver)
        await stop.wait()
        receiver._request(StopReason(StopReasonKind.REQUESTED, message="graph done"))


async def _drive(
    scheduler: Scheduler, events: Subscription, seen: list[Event], graph: Graph, ids: list[int]
) -> None:
    """Cancel as the graph says, then wait until nothing can move; cancel what is stuck."""
    cancels = sorted((after, ids[root]) for root, after in graph.cancels)
    while True:
        event = None
        with anyio.move_on_after(0.02):
            event = await events.receive()
        if event is not None:
            seen.append(event)
        while cancels and (event is None or cancels[0][0] <= len(seen)):
            await scheduler.cancel(cancels.pop(0)[1])
        if event is not None:
            continue
        jobs = await scheduler.store.list_jobs(limit=10_000)
        active = [job for job in jobs if not job.terminal]
        if not active:
            return
        if all(job.state is JobState.BLOCKED for job in active):
            for job in active:  # behind a dependency the "fail" policy ended: stuck for good
                await scheduler.cancel(job.id)


def check_graph(seen: list[Event], final: dict[int, JobState]) -> None:
    """Every job's events are a valid path ending with its end; no event of an unknown job."""
    steps: dict[int, list[str]] = {job_id: [] for job_id in final}
    for event in seen:
        assert isinstance(event, JobEvent), event  # nothing lagged
        assert event.job_id in steps, event
        steps[event.job_id].append(step_of(event))
    for job_id, state in final.items():
        check_path(job_id, state, steps[job_id])


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", ["memory", "sqlite"])
@settings(max_examples=20, deadline=None, database=None, derandomize=True)
@given(graph=graphs())
def test_every_job_event_path_is_valid_and_ends_with_its_end(
    kind: str, backend: str, graph: Graph
) -> None:
    store: Store = MemoryStore() if kind == "memory" else SqliteMemoryStore()
    seen, final = anyio.run(run_graph, store, graph, backend=backend)
    check_graph(seen, final)


def test_the_checker_refuses_bad_paths() -> None:
    check_path(1, JobState.COMPLETED, ["submitted", "started", "waiting", "completed"])
    check_path(
        1,
        JobState.COMPLETED,
        ["submitted", "started", "retried", "retrying", "started", "completed"],
    )
    bad = [
        (JobState.COMPLETED, ["submitted", "started", "completed", "completed"]),
        (JobState.FAILED, ["submitted", "started", "completed", "failed"]),
        (JobState.FAILED, ["submitted", "started", "waiting"]),
        (
            JobState.COMPLETED,
            ["submitted", "started", "retrying", "retried", "started", "completed"],
        ),
        (JobState.COMPLETED, ["started", "completed"]),
        (JobState.FAILED, ["submitted", "started", "completed"]),
    ]
    for final, steps in bad:
        with pytest.raises(AssertionError):
            check_path(1, final, steps)
