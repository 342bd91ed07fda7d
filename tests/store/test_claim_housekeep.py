"""Store conformance: `ClaimRequest(housekeep=False)` leases pending jobs and does nothing else.

A busy worker skips housekeeping (waking due jobs, expiring stale ones, reclaiming expired
leases) on most claims; only a claim with `housekeep=True` (the default) does that work.
"""

from __future__ import annotations

import pytest

from wireframe.store import ClaimRequest, JobState, Store

from store_support import DOMAIN, TTL, claim_one, state, submit

pytestmark = pytest.mark.anyio


def request(housekeep: bool, worker: str = "w1") -> ClaimRequest:
    """A claim of domain `DOMAIN`, with or without housekeeping."""
    return ClaimRequest(
        worker_id=worker, limit=10, lease_ttl=TTL, domains=(DOMAIN,), housekeep=housekeep
    )


async def test_claim_without_housekeeping_leaves_a_due_job_scheduled(store: Store, clock) -> None:
    job_id = await submit(store, run_at=clock.now + 5)
    assert await state(store, job_id) is JobState.SCHEDULED
    clock.advance(5)  # run_at <= now: due, but only housekeeping moves it to pending
    assert await store.next_due_at() == clock.now

    assert await store.claim(request(housekeep=False)) == []
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.SCHEDULED
    assert record.attempt == 0 and record.claim_seq == 0 and record.worker_id is None
    assert await store.attempts(job_id) == []
    assert await store.next_due_at() == clock.now

    claimed = await store.claim(request(housekeep=True))
    assert [j.id for j in claimed] == [job_id]
    assert claimed[0].state is JobState.RUNNING and claimed[0].attempt == 1
    assert await state(store, job_id) is JobState.RUNNING
    assert await store.next_due_at() is None


async def test_claim_without_housekeeping_still_leases_pending_jobs(store: Store, clock) -> None:
    due = await submit(store, run_at=clock.now + 1, priority=99)
    ready = await submit(store)
    clock.advance(2)
    claimed = await store.claim(request(housekeep=False))
    assert [j.id for j in claimed] == [ready]
    [attempt] = await store.attempts(ready)
    assert (attempt.attempt, attempt.worker_id, attempt.started_at) == (1, "w1", clock.now)
    assert attempt.finished_at is None and attempt.outcome is None
    assert await state(store, due) is JobState.SCHEDULED
    claimed = await store.claim(request(housekeep=True))
    assert [j.id for j in claimed] == [due]


async def test_claim_without_housekeeping_does_not_reclaim_an_expired_lease(
    store: Store, clock
) -> None:
    job_id = await submit(store, max_attempts=2)
    first = await claim_one(store, job_id, worker="gone")
    clock.advance(TTL + 1)  # the lease has run out

    assert await store.claim(request(housekeep=False, worker="w2")) == []
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.RUNNING and record.worker_id == "gone"
    assert record.claim_seq == first.claim_seq
    [attempt] = await store.attempts(job_id)
    assert attempt.finished_at is None and attempt.outcome is None

    [again] = await store.claim(request(housekeep=True, worker="w2"))
    assert again.id == job_id and again.worker_id == "w2"
    assert again.attempt == 2 and again.claim_seq > first.claim_seq
    attempts = await store.attempts(job_id)
    assert [(a.attempt, a.worker_id, a.outcome) for a in attempts] == [
        (1, "gone", "lease_expired"),
        (2, "w2", None),
    ]


async def test_claim_without_housekeeping_does_not_expire_a_scheduled_job(
    store: Store, clock
) -> None:
    job_id = await submit(store, run_at=clock.now + 100, expires_at=clock.now + 5)
    clock.advance(10)
    assert await store.claim(request(housekeep=False)) == []
    assert await state(store, job_id) is JobState.SCHEDULED
    assert await store.claim(request(housekeep=True)) == []
    record = await store.get(job_id)
    assert record is not None and record.state is JobState.EXPIRED
    assert record.finished_at == clock.now
