"""`oldest_pending`: per domain, how long the longest-waiting ready job has waited.

It is what an on-call engineer alerts on (`wireframe_oldest_pending_age_seconds`), so it must
count from when a job became ready to run (not from its submission, and not from the last time
aging raised its priority), and must see due jobs that no worker has woken yet.
"""

from __future__ import annotations

import pytest

from wireframe.store import JobState, Store

from store_support import claim, claim_one, complete, fail, job, submit

pytestmark = pytest.mark.anyio


async def test_an_empty_store_has_no_waits(store: Store) -> None:
    assert await store.oldest_pending() == {}


async def test_each_domain_reports_its_longest_waiting_pending_job(store: Store, clock) -> None:
    await submit(store)  # d, at t0
    clock.advance(5)
    await submit(store, type="e::t")
    await submit(store)
    clock.advance(10)
    assert await store.oldest_pending() == {"d": 15.0, "e": 10.0}


async def test_started_and_ended_jobs_no_longer_wait(store: Store, clock) -> None:
    first = await submit(store)
    clock.advance(3)
    second = await submit(store)
    clock.advance(3)
    await claim_one(store, first, limit=1)
    assert await store.oldest_pending() == {"d": 3.0}
    claimed = await claim_one(store, second)
    assert await complete(store, claimed.lease)
    assert await store.oldest_pending() == {}


async def test_a_delayed_job_waits_from_its_run_at_even_before_a_worker_wakes_it(
    store: Store, clock
) -> None:
    delayed = await submit(store, run_at=clock.now + 100)
    clock.advance(99)
    assert await store.oldest_pending() == {}
    clock.advance(31)  # due 30 s ago, still `scheduled`: no worker has looked
    assert await store.get(delayed) is not None
    assert await store.oldest_pending() == {"d": 30.0}
    await store.housekeep()  # woken: pending, still waiting since its run_at
    record = await store.get(delayed)
    assert record is not None and record.state is JobState.PENDING
    assert record.ready_at == clock.now - 30
    assert await store.oldest_pending() == {"d": 30.0}


async def test_aging_does_not_restart_the_wait(store: Store, clock) -> None:
    job_id = await submit(store, priority=0)
    clock.advance(100)
    assert await store.age(older_than=60, step=5, cap=50) == 1
    clock.advance(20)
    record = await store.get(job_id)
    assert record is not None and record.priority == 5
    assert record.ready_at == clock.now - 120
    assert await store.oldest_pending() == {"d": 120.0}
    # Aging keeps its own interval: the next raise comes 60 s after the last one.
    clock.advance(39)
    assert await store.age(older_than=60, step=5, cap=50) == 0
    clock.advance(1)
    assert await store.age(older_than=60, step=5, cap=50) == 1


async def test_a_retry_waits_from_its_retry_time(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=2)
    claimed = await claim_one(store, job_id)
    clock.advance(5)
    assert await fail(store, claimed.lease, retry_at=clock.now + 10)
    clock.advance(25)
    assert await store.oldest_pending() == {"d": 15.0}
    [again] = await claim(store)
    assert again.ready_at == clock.now - 15


async def test_a_blocked_job_waits_from_when_its_dependency_completed(store: Store, clock) -> None:
    dep = await submit(store)
    [blocked] = await store.submit([job(depends_on=(dep,))])
    clock.advance(10)
    claimed = await claim_one(store, dep)
    clock.advance(10)
    assert await store.oldest_pending() == {}
    assert await complete(store, claimed.lease)
    clock.advance(4)
    assert await store.oldest_pending() == {"d": 4.0}
    [unblocked] = await claim(store)
    assert (unblocked.id, unblocked.ready_at) == (blocked.id, clock.now - 4)
