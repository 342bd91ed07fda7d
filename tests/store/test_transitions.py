"""What a store reports to its observers: every end it makes on its own (cascades, tree cancels,
a parent ending after its children, a job that lost its worker too often, a job born ended),
and, marked `own`, where `finish` put the job of each outcome it did not simply complete."""

from __future__ import annotations

import pytest

from wireframe.store import Complete, Fail, JobState, Release, Store, Transition

from store_support import (
    TYPE,
    FakeClock,
    claim,
    claim_one,
    complete,
    fail,
    release,
    request,
    submit,
)

pytestmark = pytest.mark.anyio


def observed(store: Store) -> list[Transition]:
    """The list the store's reports are appended to from now on."""
    seen: list[Transition] = []
    store.observe(seen.extend)
    return seen


def taken(seen: list[Transition]) -> list[Transition]:
    """What was reported since the last call (and forget it)."""
    out = list(seen)
    seen.clear()
    return out


async def test_a_parent_reports_its_real_children_then_its_end(
    store: Store, clock: FakeClock
) -> None:
    parent = await claim_one(store, await submit(store))
    kids = [await submit(store, parent_id=parent.id) for _ in range(2)]
    seen = observed(store)
    assert await complete(store, parent.lease)
    assert taken(seen) == [
        Transition(parent.id, TYPE, JobState.WAITING, attempt=1, children=2, own=True)
    ]
    clock.advance(5.0)
    first, second = await claim(store)
    assert await complete(store, first.lease)
    assert taken(seen) == []  # a plain completion is its caller's to tell; the parent waits on
    assert await complete(store, second.lease)
    assert taken(seen) == [Transition(parent.id, TYPE, JobState.COMPLETED, attempt=1, duration=5.0)]
    assert sorted(j.id for j in (first, second)) == kids


async def test_a_failed_child_fails_its_waiting_parent(store: Store) -> None:
    parent = await claim_one(store, await submit(store))
    kid = await submit(store, parent_id=parent.id)
    assert await complete(store, parent.lease)
    child = await claim_one(store, kid)
    seen = observed(store)
    assert await fail(store, child.lease, "boom")
    error = f"child job {kid} ended as failed: boom"
    assert taken(seen) == [
        Transition(kid, TYPE, JobState.FAILED, error="boom", attempt=1, own=True),
        Transition(parent.id, TYPE, JobState.FAILED, error=error, attempt=1),
    ]


async def test_dependents_report_how_a_failure_ended_them(store: Store) -> None:
    root = await submit(store)
    cancelled = await submit(store, depends_on=(root,), on_dependency_failure="cancel")
    failed = await submit(store, depends_on=(root,), on_dependency_failure="fail")
    behind = await submit(store, depends_on=(cancelled,))
    running = await claim_one(store, root)
    seen = observed(store)
    assert await fail(store, running.lease, "boom")
    because = f"dependency job {root} ended as failed"
    assert taken(seen) == [
        Transition(root, TYPE, JobState.FAILED, error="boom", attempt=1, own=True),
        Transition(cancelled, TYPE, JobState.CANCELLED, (root,), because),
        Transition(failed, TYPE, JobState.DEPENDENCY_FAILED, (root,), because),
        Transition(
            behind,
            TYPE,
            JobState.CANCELLED,
            (cancelled,),
            f"dependency job {cancelled} ended as cancelled",
        ),
    ]
    late = await submit(store, depends_on=(root,), on_dependency_failure="fail")
    assert taken(seen) == [Transition(late, TYPE, JobState.DEPENDENCY_FAILED, (root,), because)]


async def test_cancelling_a_tree_reports_each_job_it_ended(store: Store) -> None:
    parent = await claim_one(store, await submit(store))
    kids = [await submit(store, parent_id=parent.id, run_at=9e9) for _ in range(2)]
    seen = observed(store)
    assert await store.cancel(parent.id, "stop") is JobState.RUNNING
    assert taken(seen) == [  # the running parent is asked to stop: its worker ends it
        Transition(kid, TYPE, JobState.CANCELLED, error="stop") for kid in kids
    ]
    assert await release(store, parent.lease, "cancelled", reason="cancelled while running")
    assert taken(seen) == [
        Transition(
            parent.id,
            TYPE,
            JobState.CANCELLED,
            error="cancelled while running",
            attempt=1,
            own=True,
        )
    ]


async def test_a_job_that_lost_its_worker_too_often_reports_its_failure(
    store: Store, clock: FakeClock
) -> None:
    job_id = await submit(store, max_reclaims=0)
    await claim_one(store, job_id, lease_ttl=10.0)
    seen = observed(store)
    clock.advance(20.0)
    await store.housekeep()
    [end] = taken(seen)
    assert (end.job_id, end.state, end.attempt, end.own) == (job_id, JobState.FAILED, 1, False)
    assert end.error is not None and "gave up after max_reclaims=0" in end.error


async def test_outcomes_report_where_they_left_their_job(store: Store, clock: FakeClock) -> None:
    a = await submit(store, max_attempts=2)
    b, c, d = [await submit(store) for _ in range(3)]
    held = {j.id: j for j in await claim(store)}
    seen = observed(store)
    applied = await store.finish(
        [
            Fail(held[a].lease, "flaky", retry_at=clock.now + 60),
            Release(held[b].lease, "pending", "preempted"),
            Complete(held[c].lease, "null"),
            Fail(held[d].lease, "spent", retry_at=clock.now),  # its only attempt: it ends
        ]
    )
    assert applied == [True, True, True, True]
    assert taken(seen) == [  # the completion that ended its job at once is not reported
        Transition(a, TYPE, JobState.SCHEDULED, error="flaky", attempt=1, own=True),
        Transition(b, TYPE, JobState.PENDING, attempt=1, own=True),
        Transition(d, TYPE, JobState.FAILED, error="spent", attempt=1, own=True),
    ]
    assert [j.id for j in await store.claim(request())] == [b]
