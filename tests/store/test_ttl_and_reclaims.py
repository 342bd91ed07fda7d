"""Store conformance: a ttl bounds only the wait before the first start; lost workers spend
the job's reclaim budget (`max_reclaims`), never its retry policy's attempts."""

from __future__ import annotations

import pytest

from wireframe.store import JobState, NewSchedule, Release, Store, Submitted

from store_support import (
    TTL,
    claim_ids,
    claim_one,
    fail,
    job,
    release,
    state,
    submit,
    submit_many,
)

pytestmark = pytest.mark.anyio


# -- a ttl ends at the first start ------------------------------------------------------------


async def test_a_claim_clears_the_ttl(store: Store, clock) -> None:
    job_id = await submit(store, expires_at=clock.now + 5)
    claimed = await claim_one(store, job_id)
    record = await store.get(job_id)
    assert claimed.expires_at is None and record is not None and record.expires_at is None


async def test_a_job_suspended_past_its_ttl_runs_when_it_wakes(store: Store, clock) -> None:
    job_id = await submit(store, expires_at=clock.now + 5)
    claimed = await claim_one(store, job_id)
    assert await release(store, claimed.lease, "suspended", run_at=clock.now + 10)
    clock.advance(20)
    assert (await claim_one(store, job_id)).attempt == 1


async def test_a_job_waiting_for_a_retry_past_its_ttl_runs_again(store: Store, clock) -> None:
    job_id = await submit(store, expires_at=clock.now + 5, max_attempts=2)
    claimed = await claim_one(store, job_id)
    assert await fail(store, claimed.lease, retry_at=clock.now + 10)
    clock.advance(20)
    assert (await claim_one(store, job_id)).attempt == 2


async def test_a_job_reclaimed_past_its_ttl_runs_again(store: Store, clock) -> None:
    job_id = await submit(store, expires_at=clock.now + 5, max_attempts=2)
    await claim_one(store, job_id, worker="dead")
    clock.advance(TTL)
    assert (await claim_one(store, job_id, worker="alive")).attempt == 2


async def test_a_started_job_paused_past_its_ttl_runs_once_resumed(store: Store, clock) -> None:
    job_id = await submit(store, expires_at=clock.now + 5)
    claimed = await claim_one(store, job_id)
    assert await release(store, claimed.lease, "paused")
    clock.advance(20)
    assert await claim_ids(store) == []
    assert await store.resume(job_id) == 1
    assert (await claim_one(store, job_id)).attempt == 1


# -- reclaims ---------------------------------------------------------------------------------


async def test_a_lost_worker_spends_no_attempt(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=2)
    await claim_one(store, job_id, worker="dead")
    clock.advance(TTL)
    second = await claim_one(store, job_id, worker="alive")
    assert (second.attempt, second.reclaims, second.attempts_spent) == (2, 1, 1)
    # The first real failure of two allowed: the job is retried, not ended.
    assert await fail(store, second.lease, retry_at=clock.now)
    assert await state(store, job_id) is JobState.PENDING
    third = await claim_one(store, job_id)
    assert (third.attempt, third.attempts_spent) == (3, 2)
    assert await fail(store, third.lease, retry_at=clock.now)  # the second: no attempt left
    record = await store.get(job_id)
    assert record is not None and record.state is JobState.FAILED and record.error == "boom"


async def test_every_reclaim_is_in_the_history_and_the_last_one_gives_up(
    store: Store, clock
) -> None:
    job_id = await submit(store, max_reclaims=2)
    for worker in ("w1", "w2", "w3"):
        await claim_one(store, job_id, worker=worker)
        clock.advance(TTL)
    assert await claim_ids(store) == []
    record = await store.get(job_id)
    assert record is not None
    gave_up = "worker lost 3 times (last: lease of worker w3 expired); gave up after max_reclaims=2"
    assert (record.state, record.error, record.reason) == (JobState.FAILED, gave_up, gave_up)
    assert (record.attempt, record.reclaims, record.max_reclaims) == (3, 3, 2)
    attempts = await store.attempts(job_id)
    assert [(a.attempt, a.worker_id, a.outcome, a.error) for a in attempts] == [
        (1, "w1", "lease_expired", "lease of worker w1 expired (reclaim 1 of max_reclaims=2)"),
        (2, "w2", "lease_expired", "lease of worker w2 expired (reclaim 2 of max_reclaims=2)"),
        (3, "w3", "lease_expired", gave_up),
    ]


async def test_no_reclaim_allowed_fails_at_the_first_lost_worker(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=5, max_reclaims=0)
    await claim_one(store, job_id, worker="w1")
    clock.advance(TTL)
    assert await claim_ids(store) == []
    record = await store.get(job_id)
    assert record is not None and record.state is JobState.FAILED
    assert record.error == (
        "worker lost 1 time (last: lease of worker w1 expired); gave up after max_reclaims=0"
    )


async def test_a_reclaim_that_pauses_spends_no_attempt(store: Store, clock) -> None:
    job_id = await submit(store)
    await claim_one(store, job_id)
    assert await store.pause(job_id) == 1
    clock.advance(TTL)
    assert await claim_ids(store) == []
    record = await store.get(job_id)
    assert record is not None and (record.state, record.reclaims) == (JobState.PAUSED, 1)
    await store.resume(job_id)
    again = await claim_one(store, job_id)
    assert (again.attempt, again.attempts_spent) == (2, 1)


async def test_retry_gives_fresh_retry_and_reclaim_budgets(store: Store, clock) -> None:
    job_id = await submit(store, max_reclaims=1)
    for _ in range(2):
        await claim_one(store, job_id)
        clock.advance(TTL)
    await claim_ids(store)
    assert await state(store, job_id) is JobState.FAILED
    await store.retry(job_id)
    record = await store.get(job_id)
    assert record is not None and (record.reclaims, record.max_reclaims) == (0, 1)
    await claim_one(store, job_id)
    clock.advance(TTL)
    again = await claim_one(store, job_id)  # one lost worker allowed again
    assert (again.attempt, again.reclaims) == (4, 1)
    # One attempt again (max_attempts=1), spent by its first real failure.
    assert await fail(store, again.lease, retry_at=clock.now)
    assert await state(store, job_id) is JobState.FAILED


async def test_max_reclaims_is_kept_by_every_kind_of_submit(store: Store, clock) -> None:
    plain = await submit(store, max_reclaims=7)
    uniform = await submit_many(store, 20, max_reclaims=5)  # one statement for the batch
    keyed = await submit(store, key="k", max_reclaims=0)
    records = [await store.get(i) for i in (plain, *uniform, keyed)]
    assert [r.max_reclaims for r in records if r is not None] == [7] + [5] * 20 + [0]
    assert {r.reclaims for r in records if r is not None} == {0}


async def test_every_occurrence_of_a_schedule_keeps_its_max_reclaims(store: Store, clock) -> None:
    # overlap="allow": the occurrence is created while the first one still runs.
    schedule = NewSchedule('{"every": 60}', clock.now + 60, overlap="allow")
    [first] = await store.submit(
        [job(recurring=schedule, max_reclaims=6, expires_at=clock.now + 5)]
    )
    assert isinstance(first, Submitted) and first.schedule_id is not None
    await claim_one(store, first.id)
    clock.advance(60)
    fired = await store.fire_schedule(first.schedule_id, clock.now, clock.now + 60)
    assert fired is not None and fired.job_id is not None
    occurrence = await store.get(fired.job_id)
    assert occurrence is not None
    assert (occurrence.max_reclaims, occurrence.reclaims) == (6, 0)
    # The ttl still applies to each occurrence until it starts.
    assert occurrence.expires_at == occurrence.run_at + 5


async def test_a_released_attempt_is_not_a_reclaim(store: Store, clock) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    [ok] = await store.finish([Release(claimed.lease, "pending", reason="preempted")])
    assert ok
    again = await claim_one(store, job_id)
    assert (again.attempt, again.reclaims) == (1, 0)
