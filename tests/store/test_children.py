"""Store conformance: parents and children."""

from __future__ import annotations

import pytest

from wireframe.store import Beat, JobRecord, JobState, LeaseStatus, Store

from store_support import (
    TTL,
    claim,
    claim_ids,
    claim_one,
    complete,
    fail,
    job,
    run,
    state,
    states,
    submit,
)

pytestmark = pytest.mark.anyio


async def running_parent(store: Store, **kw: object) -> JobRecord:
    """Submit a parent (domain p) and claim it."""
    parent = await submit(store, type="p::t", **kw)
    return await claim_one(store, parent, domains=("p",))


async def children(store: Store, parent: int, n: int, **kw: object) -> list[int]:
    """Submit n children of `parent` in domain c."""
    results = await store.submit([job("c::t", parent_id=parent, **kw) for _ in range(n)])
    return [r.id for r in results]


async def test_parent_waits_for_children_then_completes(store: Store, clock) -> None:
    parent = await running_parent(store)
    kids = await children(store, parent.id, 2)
    assert await complete(store, parent.lease, '"parent result"')
    record = await store.get(parent.id)
    assert record is not None
    assert record.state is JobState.WAITING and record.active_children == 2
    assert record.finished_at is None
    claimed = await claim(store, domains=("c",))
    assert await complete(store, claimed[0].lease)
    assert await state(store, parent.id) is JobState.WAITING
    clock.advance(1)
    assert await complete(store, claimed[1].lease)
    record = await store.get(parent.id)
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.result == '"parent result"'
    assert record.finished_at == clock.now
    assert record.active_children == 0
    assert [c.id for c in claimed] == kids


async def test_parent_whose_children_already_ended_completes_at_once(store: Store) -> None:
    parent = await running_parent(store)
    [kid] = await children(store, parent.id, 1)
    await run(store, kid, domains=("c",))
    assert await complete(store, parent.lease)
    assert await state(store, parent.id) is JobState.COMPLETED


async def test_finalize_runs_after_children(store: Store) -> None:
    parent = await running_parent(store)
    [kid] = await children(store, parent.id, 1)
    assert await complete(store, parent.lease, '"first"', needs_finalize=True)
    assert await state(store, parent.id) is JobState.WAITING
    await run(store, kid, domains=("c",))
    record = await store.get(parent.id)
    assert record is not None
    assert record.state is JobState.PENDING and record.phase == "finalize"
    again = await claim_one(store, parent.id, domains=("p",))
    assert again.phase == "finalize"
    assert again.attempt == 1
    assert await complete(store, again.lease, '"final"', needs_finalize=True)
    record = await store.get(parent.id)
    assert record is not None
    assert record.state is JobState.COMPLETED and record.result == '"final"'


async def test_finalize_without_children_runs_next(store: Store) -> None:
    parent = await running_parent(store)
    assert await complete(store, parent.lease, needs_finalize=True)
    final = await claim_one(store, parent.id, domains=("p",))
    assert final.phase == "finalize"
    assert await complete(store, final.lease)
    assert await state(store, parent.id) is JobState.COMPLETED


async def test_fail_fast_with_waiting_parent(store: Store) -> None:
    parent = await running_parent(store)
    first, second, third = await children(store, parent.id, 3)
    assert await complete(store, parent.lease)
    a, b = await claim(store, limit=2, domains=("c",))
    assert await fail(store, a.lease, "child broke")
    assert await states(store, parent.id, first, second, third) == [
        JobState.FAILED,
        JobState.FAILED,
        JobState.RUNNING,
        JobState.CANCELLED,
    ]
    record = await store.get(parent.id)
    assert record is not None and "child broke" in (record.error or "")
    assert await store.heartbeat([Beat(b.lease)], TTL) == {b.id: LeaseStatus.CANCEL_REQUESTED}
    assert await complete(store, b.lease)
    assert await state(store, parent.id) is JobState.FAILED


async def test_fail_fast_with_running_parent(store: Store) -> None:
    parent = await running_parent(store)
    first, second = await children(store, parent.id, 2)
    kid = await claim_one(store, first, limit=1, domains=("c",))
    assert await fail(store, kid.lease)
    assert await states(store, parent.id, second) == [JobState.RUNNING, JobState.CANCELLED]
    assert await store.heartbeat([Beat(parent.lease)], TTL) == {
        parent.id: LeaseStatus.CANCEL_REQUESTED
    }
    # Whatever the parent reports next, it ends failed.
    assert await complete(store, parent.lease, '"done anyway"')
    record = await store.get(parent.id)
    assert record is not None
    assert record.state is JobState.FAILED
    assert str(first) in (record.error or "")
    # Nothing is left to claim.
    assert await claim_ids(store, domains=("c", "p")) == []


async def test_fail_fast_off_leaves_the_parent_alone(store: Store) -> None:
    parent = await running_parent(store, fail_fast=False)
    first, second = await children(store, parent.id, 2)
    assert await complete(store, parent.lease)
    kid = await claim_one(store, first, limit=1, domains=("c",))
    assert await fail(store, kid.lease)
    assert await states(store, parent.id, second) == [JobState.WAITING, JobState.PENDING]
    await run(store, second, domains=("c",))
    assert await state(store, parent.id) is JobState.COMPLETED


async def test_cancelled_child_does_not_fail_the_parent(store: Store) -> None:
    parent = await running_parent(store)
    first, second = await children(store, parent.id, 2)
    assert await complete(store, parent.lease)
    await store.cancel(first)
    assert await state(store, parent.id) is JobState.WAITING
    await run(store, second, domains=("c",))
    assert await state(store, parent.id) is JobState.COMPLETED


async def test_cancelling_a_parent_cancels_all_descendants(store: Store) -> None:
    parent = await running_parent(store)
    child, idle_child = await children(store, parent.id, 2)
    running = await claim_one(store, child, limit=1, domains=("c",))
    [grandchild] = await store.submit([job("g::t", parent_id=child)])
    assert await store.cancel(parent.id) is JobState.RUNNING
    assert await states(store, child, idle_child, grandchild.id) == [
        JobState.RUNNING,
        JobState.CANCELLED,
        JobState.CANCELLED,
    ]
    beats = await store.heartbeat([Beat(parent.lease), Beat(running.lease)], TTL)
    assert beats == {
        parent.id: LeaseStatus.CANCEL_REQUESTED,
        child: LeaseStatus.CANCEL_REQUESTED,
    }
    assert await complete(store, running.lease)
    assert await complete(store, parent.lease)
    # A job that finishes its work after a cancel request keeps its result.
    assert await state(store, child) is JobState.COMPLETED


async def test_cancelling_a_waiting_parent_cancels_it_and_its_children(store: Store) -> None:
    parent = await running_parent(store)
    kids = await children(store, parent.id, 3)
    assert await complete(store, parent.lease)
    assert await store.cancel(parent.id) is JobState.CANCELLED
    assert await states(store, *kids) == [JobState.CANCELLED] * 3


async def test_child_of_ended_parent_is_rejected(store: Store) -> None:
    parent = await running_parent(store)
    assert await complete(store, parent.lease)
    from wireframe.store import InvalidTransitionError

    with pytest.raises(InvalidTransitionError):
        await children(store, parent.id, 1)


async def test_child_born_ended_does_not_release_the_parent_early(store: Store) -> None:
    parent = await running_parent(store, fail_fast=False)
    dep = await submit(store, type="x::t")
    assert await store.cancel(dep) is JobState.CANCELLED
    [alive] = await children(store, parent.id, 1)
    [born_cancelled] = await children(store, parent.id, 1, depends_on=(dep,))
    assert await state(store, born_cancelled) is JobState.CANCELLED
    record = await store.get(parent.id)
    assert record is not None and record.active_children == 1
    assert await complete(store, parent.lease)
    assert await state(store, parent.id) is JobState.WAITING
    await run(store, alive, domains=("c",))
    assert await state(store, parent.id) is JobState.COMPLETED


async def test_expired_child_fails_a_fail_fast_parent(store: Store, clock) -> None:
    parent = await running_parent(store)
    [kid] = await children(store, parent.id, 1, expires_at=clock.now + 1)
    assert await complete(store, parent.lease)
    clock.advance(1)
    assert await claim_ids(store, domains=("c",)) == []
    assert await states(store, kid, parent.id) == [JobState.EXPIRED, JobState.FAILED]


async def test_nested_children_complete_bottom_up(store: Store) -> None:
    parent = await running_parent(store)
    [child] = await children(store, parent.id, 1)
    child_rec = await claim_one(store, child, domains=("c",))
    [grandchild] = await store.submit([job("g::t", parent_id=child)])
    assert await complete(store, child_rec.lease)
    assert await complete(store, parent.lease)
    assert await states(store, parent.id, child) == [JobState.WAITING, JobState.WAITING]
    await run(store, grandchild.id, domains=("g",))
    assert await states(store, parent.id, child) == [JobState.COMPLETED, JobState.COMPLETED]
