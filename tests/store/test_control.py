"""Store conformance: operator control (cancel, pause, resume, retry, prune)."""

from __future__ import annotations

import pytest

from wireframe.store import (
    Beat,
    DuplicateKeyError,
    InvalidTransitionError,
    JobState,
    LeaseStatus,
    Store,
    Submitted,
    UnknownJobError,
)

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


async def test_cancel_idle_job_at_once(store: Store, clock) -> None:
    pending = await submit(store)
    scheduled = await submit(store, run_at=clock.now + 10)
    assert await store.cancel(pending, "operator said so") is JobState.CANCELLED
    assert await store.cancel(scheduled) is JobState.CANCELLED
    record = await store.get(pending)
    assert record is not None
    assert record.reason == "operator said so" and record.finished_at == clock.now
    clock.advance(10)
    assert await claim_ids(store) == []


async def test_cancel_running_job_is_a_request(store: Store) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    assert await store.cancel(job_id) is JobState.RUNNING
    record = await store.get(job_id)
    assert record is not None and record.cancel_requested
    assert await store.heartbeat([Beat(claimed.lease)], TTL) == {
        job_id: LeaseStatus.CANCEL_REQUESTED
    }
    assert await fail(store, claimed.lease, "cancelled by request")
    assert await state(store, job_id) is JobState.CANCELLED


async def test_cancel_terminal_job_changes_nothing(store: Store) -> None:
    job_id = await submit(store)
    await run(store, job_id)
    assert await store.cancel(job_id) is JobState.COMPLETED
    record = await store.get(job_id)
    assert record is not None and record.result == '"ok"'


async def test_cancel_frees_the_key(store: Store) -> None:
    job_id = await submit(store, key="k")
    await store.cancel(job_id)
    assert isinstance((await store.submit([job(key="k")]))[0], Submitted)


async def test_pause_and_resume_a_tree(store: Store, clock) -> None:
    parent = await submit(store, type="p::t")
    parent_rec = await claim_one(store, parent, domains=("p",))
    pending, scheduled, running = (
        r.id
        for r in await store.submit(
            [
                job(parent_id=parent),
                job(parent_id=parent, run_at=clock.now + 10),
                job(parent_id=parent, type="r::t"),
            ]
        )
    )
    running_rec = await claim_one(store, running, domains=("r",))
    assert await store.pause(parent) == 4
    assert await states(store, parent, pending, scheduled, running) == [
        JobState.RUNNING,
        JobState.PAUSED,
        JobState.PAUSED,
        JobState.RUNNING,
    ]
    beats = await store.heartbeat([Beat(parent_rec.lease), Beat(running_rec.lease)], TTL)
    assert set(beats.values()) == {LeaseStatus.PAUSE_REQUESTED}
    clock.advance(20)
    assert await claim_ids(store) == []
    assert await store.resume(parent) == 2
    assert await states(store, pending, scheduled) == [JobState.PENDING, JobState.PENDING]
    beats = await store.heartbeat([Beat(parent_rec.lease), Beat(running_rec.lease)], TTL)
    assert set(beats.values()) == {LeaseStatus.OK}
    assert await claim_ids(store) == [pending, scheduled]


async def test_resume_restores_the_previous_state(store: Store, clock) -> None:
    dep = await submit(store, type="x::t")
    blocked = await submit(store, depends_on=(dep,))
    scheduled = await submit(store, run_at=clock.now + 100)
    for job_id in (blocked, scheduled):
        assert await store.pause(job_id) == 1
        assert await state(store, job_id) is JobState.PAUSED
        assert await store.resume(job_id) == 1
    assert await states(store, blocked, scheduled) == [JobState.BLOCKED, JobState.SCHEDULED]


async def test_paused_waiting_parent_ends_when_its_children_do(store: Store) -> None:
    parent = await submit(store, type="p::t")
    parent_rec = await claim_one(store, parent, domains=("p",))
    [kid] = await store.submit([job(parent_id=parent)])
    assert await complete(store, parent_rec.lease)
    assert await store.pause(parent) == 2
    assert await claim_ids(store) == []
    await store.resume(kid.id)
    await run(store, kid.id)
    # Nothing is left to run for the parent: it completes even while paused.
    assert await state(store, parent) is JobState.COMPLETED


async def test_paused_waiting_parent_finalizes_only_after_resume(store: Store) -> None:
    parent = await submit(store, type="p::t")
    parent_rec = await claim_one(store, parent, domains=("p",))
    [kid] = await store.submit([job(parent_id=parent)])
    assert await complete(store, parent_rec.lease, needs_finalize=True)
    assert await store.pause(parent) == 2
    await store.resume(kid.id)
    await run(store, kid.id)
    assert await state(store, parent) is JobState.PAUSED
    assert await claim_ids(store, domains=("p",)) == []
    assert await store.resume(parent) == 1
    final = await claim_one(store, parent, domains=("p",))
    assert final.phase == "finalize"


async def test_pause_and_resume_errors(store: Store) -> None:
    job_id = await submit(store)
    await run(store, job_id)
    with pytest.raises(InvalidTransitionError):
        await store.pause(job_id)
    with pytest.raises(InvalidTransitionError):
        await store.resume(job_id)
    with pytest.raises(UnknownJobError):
        await store.pause(99_999)
    other = await submit(store)
    assert await store.resume(other) == 0  # not paused: nothing moves
    assert await state(store, other) is JobState.PENDING


async def test_cancel_paused_job(store: Store) -> None:
    job_id = await submit(store)
    await store.pause(job_id)
    assert await store.cancel(job_id) is JobState.CANCELLED


async def test_retry_failed_job_with_fresh_budget(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=2)
    for _ in range(2):
        claimed = await claim_one(store, job_id)
        await fail(store, claimed.lease, retry_at=clock.now)
    assert await state(store, job_id) is JobState.FAILED
    await store.retry(job_id)
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.PENDING and record.finished_at is None
    third = await claim_one(store, job_id)
    assert third.attempt == 3
    await fail(store, third.lease, retry_at=clock.now)
    fourth = await claim_one(store, job_id)
    assert fourth.attempt == 4
    await fail(store, fourth.lease, retry_at=clock.now)
    assert await state(store, job_id) is JobState.FAILED
    assert [a.attempt for a in await store.attempts(job_id)] == [1, 2, 3, 4]


async def test_retry_of_cancelled_and_expired_jobs(store: Store, clock) -> None:
    cancelled = await submit(store)
    await store.cancel(cancelled)
    expired = await submit(store, expires_at=clock.now + 1)
    clock.advance(1)
    await claim(store)
    await store.retry(cancelled)
    await store.retry(expired)
    assert await claim_ids(store) == [cancelled, expired]


async def test_retry_refuses_active_and_completed_jobs(store: Store) -> None:
    active = await submit(store)
    with pytest.raises(InvalidTransitionError):
        await store.retry(active)
    await run(store, active)
    with pytest.raises(InvalidTransitionError):
        await store.retry(active)
    with pytest.raises(UnknownJobError):
        await store.retry(424_242)


async def test_retry_key_conflict(store: Store) -> None:
    first = await submit(store, key="k")
    await store.cancel(first)
    second = await submit(store, key="k")
    with pytest.raises(DuplicateKeyError, match=str(second)):
        await store.retry(first)
    assert await state(store, first) is JobState.CANCELLED


async def test_retry_child_counts_in_again(store: Store) -> None:
    parent = await submit(store, type="p::t", fail_fast=False)
    parent_rec = await claim_one(store, parent, domains=("p",))
    [kid] = await store.submit([job(parent_id=parent)])
    await store.cancel(kid.id)
    await store.retry(kid.id)
    assert await complete(store, parent_rec.lease)
    assert await state(store, parent) is JobState.WAITING
    await run(store, kid.id)
    assert await state(store, parent) is JobState.COMPLETED


async def test_prune_keeps_recent_and_active_jobs(store: Store, clock) -> None:
    old = await submit(store)
    await run(store, old)
    clock.advance(100)
    recent = await submit(store)
    await run(store, recent)
    active = await submit(store)
    assert await store.prune(clock.now - 50) == 1
    assert await store.get(old) is None
    assert await store.attempts(old) == []
    assert await states(store, recent, active) == [JobState.COMPLETED, JobState.PENDING]
    assert await store.prune(clock.now + 1) == 1
    assert [j.id for j in await store.list_jobs()] == [active]


async def test_retried_parent_counts_its_active_children(store: Store) -> None:
    parent = await submit(store, type="p::t")
    parent_rec = await claim_one(store, parent, domains=("p",))
    [kid] = await store.submit([job(parent_id=parent)])
    kid_rec = await claim_one(store, kid.id)
    assert await fail(store, parent_rec.lease)
    assert await store.heartbeat([Beat(kid_rec.lease)], TTL) == {
        kid.id: LeaseStatus.CANCEL_REQUESTED
    }
    assert await fail(store, kid_rec.lease)
    assert await states(store, parent, kid.id) == [JobState.FAILED, JobState.CANCELLED]
    await store.retry(kid.id)
    await store.retry(parent)
    record = await store.get(parent)
    assert record is not None and record.active_children == 1
    again = await claim_one(store, parent, domains=("p",))
    assert await complete(store, again.lease)
    assert await state(store, parent) is JobState.WAITING
    await run(store, kid.id)
    assert await state(store, parent) is JobState.COMPLETED
