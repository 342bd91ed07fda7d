"""Store conformance: leases, heartbeats and fencing of stale writers."""

from __future__ import annotations

import pytest

from wireframe.store import Beat, JobState, LeaseStatus, Store

from store_support import (
    TTL,
    claim_ids,
    claim_one,
    complete,
    fail,
    release,
    state,
    submit,
)

pytestmark = pytest.mark.anyio


async def test_heartbeat_extends_the_lease(store: Store, clock) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    clock.advance(TTL - 1)
    assert await store.heartbeat([Beat(claimed.lease, 0.5, "half")], TTL) == {
        job_id: LeaseStatus.OK
    }
    record = await store.get(job_id)
    assert record is not None
    assert record.lease_expires_at == clock.now + TTL
    assert (record.progress, record.progress_message) == (0.5, "half")
    # Past the original expiry, but within the renewed lease: nobody reclaims it.
    clock.advance(TTL - 1)
    assert await claim_ids(store, worker="w2") == []
    assert await state(store, job_id) is JobState.RUNNING
    assert await complete(store, claimed.lease)


async def test_heartbeat_keeps_progress_when_none_given(store: Store) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    await store.heartbeat([Beat(claimed.lease, 0.25, "quarter")], TTL)
    await store.heartbeat([Beat(claimed.lease)], TTL)
    record = await store.get(job_id)
    assert record is not None
    assert (record.progress, record.progress_message) == (0.25, "quarter")


async def test_expired_lease_is_reclaimed_as_a_new_attempt(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=3)
    first = await claim_one(store, job_id, worker="dead")
    clock.advance(TTL)
    second = await claim_one(store, job_id, worker="alive")
    assert second.attempt == 2
    assert second.worker_id == "alive"
    assert second.claim_seq > first.claim_seq
    assert second.reason and "dead" in second.reason and "expired" in second.reason
    attempts = await store.attempts(job_id)
    assert [(a.attempt, a.worker_id, a.outcome) for a in attempts] == [
        (1, "dead", "lease_expired"),
        (2, "alive", None),
    ]
    assert attempts[0].finished_at == clock.now
    assert attempts[0].error and "dead" in attempts[0].error
    # The dead worker comes back: its writes are fenced off.
    assert await store.heartbeat([Beat(first.lease)], TTL) == {job_id: LeaseStatus.LOST}
    assert not await complete(store, first.lease, '"stale"')
    assert not await fail(store, first.lease)
    assert not await release(store, first.lease)
    assert await complete(store, second.lease, '"fresh"')
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED and record.result == '"fresh"'


async def test_lease_still_valid_is_not_reclaimed(store: Store, clock) -> None:
    job_id = await submit(store)
    await claim_one(store, job_id, worker="w1")
    clock.advance(TTL - 0.001)
    assert await claim_ids(store, worker="w2") == []


async def test_expired_leases_past_max_reclaims_fail_the_job(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=1, max_reclaims=1)
    await claim_one(store, job_id, worker="w1")
    clock.advance(TTL)
    # A lost worker spends the reclaim budget, not the only attempt: the job runs again.
    await claim_one(store, job_id, worker="w2")
    clock.advance(TTL)
    assert await claim_ids(store) == []
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.FAILED
    assert record.error == (
        "worker lost 2 times (last: lease of worker w2 expired); gave up after max_reclaims=1"
    )
    assert record.finished_at == clock.now
    assert (record.attempt, record.reclaims, record.attempts_spent) == (2, 2, 0)
    assert [a.outcome for a in await store.attempts(job_id)] == ["lease_expired"] * 2


async def test_expired_lease_with_cancel_requested_cancels(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=5)
    await claim_one(store, job_id)
    assert await store.cancel(job_id) is JobState.RUNNING
    clock.advance(TTL)
    assert await claim_ids(store) == []
    assert await state(store, job_id) is JobState.CANCELLED


async def test_expired_lease_with_pause_requested_pauses(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=5)
    await claim_one(store, job_id)
    assert await store.pause(job_id) == 1
    clock.advance(TTL)
    assert await claim_ids(store) == []
    assert await state(store, job_id) is JobState.PAUSED
    await store.resume(job_id)
    assert (await claim_one(store, job_id)).attempt == 2


async def test_stale_claim_cannot_overwrite_a_newer_attempt(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=3)
    old = await claim_one(store, job_id)
    clock.advance(TTL)
    new = await claim_one(store, job_id)
    assert not await fail(store, old.lease, retry_at=clock.now)
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.RUNNING
    assert record.claim_seq == new.claim_seq
    assert record.attempt == 2


async def test_heartbeat_reports_cancel_and_pause_requests(store: Store) -> None:
    a = await submit(store)
    b = await submit(store)
    ca, cb = await claim_one_each(store, a, b)
    assert await store.cancel(a) is JobState.RUNNING
    assert await store.pause(b) == 1
    assert await store.heartbeat([Beat(ca.lease), Beat(cb.lease)], TTL) == {
        a: LeaseStatus.CANCEL_REQUESTED,
        b: LeaseStatus.PAUSE_REQUESTED,
    }
    await store.resume(b)
    assert await store.heartbeat([Beat(cb.lease)], TTL) == {b: LeaseStatus.OK}


async def test_heartbeat_of_an_ended_job_is_lost(store: Store) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    assert await complete(store, claimed.lease)
    assert await store.heartbeat([Beat(claimed.lease)], TTL) == {job_id: LeaseStatus.LOST}
    assert await store.heartbeat([], TTL) == {}


async def test_finish_twice_applies_once(store: Store) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    assert await complete(store, claimed.lease, '"one"')
    assert not await complete(store, claimed.lease, '"two"')
    record = await store.get(job_id)
    assert record is not None and record.result == '"one"'


async def claim_one_each(store: Store, *ids: int):  # type: ignore[no-untyped-def]
    """Claim exactly `ids` and return their records in that order."""
    from store_support import claim

    jobs = {j.id: j for j in await claim(store)}
    assert sorted(jobs) == sorted(ids)
    return [jobs[i] for i in ids]
