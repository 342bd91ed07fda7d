"""Store conformance: claiming work."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from wireframe.store import JobRecord, JobState, Store

from store_support import (
    TTL,
    claim,
    claim_ids,
    claim_one,
    complete,
    job,
    request,
    run,
    state,
    states,
    submit,
)

pytestmark = pytest.mark.anyio


async def test_priority_order_then_fifo(store: Store) -> None:
    low = [await submit(store, priority=1) for _ in range(2)]
    high = [await submit(store, priority=20) for _ in range(2)]
    mid = [await submit(store, priority=10) for _ in range(2)]
    assert await claim_ids(store) == high + mid + low


async def test_limit(store: Store) -> None:
    ids = [r.id for r in await store.submit([job() for _ in range(5)])]
    assert await claim_ids(store, limit=2) == ids[:2]
    assert await claim_ids(store, limit=2) == ids[2:4]
    assert await claim_ids(store, limit=2) == ids[4:]
    assert await claim_ids(store, limit=2) == []
    assert await claim_ids(store, limit=0) == []


async def test_claimed_record_is_leased(store: Store, clock) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id, worker="worker-7")
    assert claimed.state is JobState.RUNNING
    assert claimed.worker_id == "worker-7"
    assert claimed.lease_expires_at == clock.now + TTL
    assert claimed.attempt == 1
    assert claimed.started_at == clock.now
    assert claimed.lease.job_id == job_id
    stored = await store.get(job_id)
    assert stored is not None and stored.state is JobState.RUNNING
    assert stored.claim_seq == claimed.claim_seq
    # A running job is not claimed again.
    assert await claim_ids(store) == []


async def test_domains_filter(store: Store) -> None:
    a = await submit(store, type="a::x")
    b = await submit(store, type="b::x")
    c = await submit(store, type="c::x")
    assert await claim_ids(store, domains=("b",)) == [b]
    assert await claim_ids(store, domains=("a", "c")) == [a, c]
    assert await claim_ids(store, domains=()) == []


async def test_exclude_types_and_domains(store: Store) -> None:
    x = await submit(store, type="a::x")
    y = await submit(store, type="a::y")
    z = await submit(store, type="b::z")
    assert await claim_ids(
        store, domains=("a", "b"), exclude_types=("a::x",), exclude_domains=("b",)
    ) == [y]
    assert await claim_ids(store, domains=("a", "b"), exclude_domains=("a",)) == [z]
    assert await claim_ids(store, domains=("a", "b")) == [x]


async def test_tags_need_a_worker_with_every_tag(store: Store) -> None:
    gpu = await submit(store, tags=("gpu",))
    gpu_eu = await submit(store, tags=("gpu", "eu"))
    plain = await submit(store)
    # An untagged worker takes only untagged jobs.
    assert await claim_ids(store, limit=10, tags=()) == [plain]
    # A worker tagged gpu alone cannot take the job that also needs eu.
    assert await claim_ids(store, tags=("gpu", "us")) == [gpu]
    assert await claim_ids(store, tags=("gpu",)) == []
    assert await claim_ids(store, tags=("eu", "gpu", "x")) == [gpu_eu]


async def test_untagged_job_runs_on_a_tagged_worker(store: Store) -> None:
    plain = await submit(store)
    assert await claim_ids(store, tags=("gpu",)) == [plain]


async def test_chooser_picks_a_subset(store: Store) -> None:
    ids = [r.id for r in await store.submit([job(priority=p) for p in (1, 5, 3, 9)])]
    seen: list[list[int]] = []

    def choose(candidates: Sequence[JobRecord]) -> list[int]:
        seen.append([c.id for c in candidates])
        assert all(c.state is JobState.PENDING for c in candidates)
        return [c.id for c in candidates if c.priority % 3 == 0]  # 9 and 3

    claimed = await store.claim(request(limit=10), choose)
    assert seen == [[ids[3], ids[1], ids[2], ids[0]]]
    assert [j.id for j in claimed] == [ids[3], ids[2]]
    assert await states(store, *ids) == [
        JobState.PENDING,
        JobState.PENDING,
        JobState.RUNNING,
        JobState.RUNNING,
    ]


async def test_chooser_cannot_take_jobs_outside_the_request(store: Store) -> None:
    mine = await submit(store)
    other_domain = await submit(store, type="other::t")
    tagged = await submit(store, tags=("gpu",))
    claimed = await store.claim(request(), lambda _c: [other_domain, tagged, mine])
    assert [j.id for j in claimed] == [mine]
    assert await states(store, other_domain, tagged) == [JobState.PENDING, JobState.PENDING]


async def test_chooser_taking_nothing(store: Store) -> None:
    job_id = await submit(store)
    assert await store.claim(request(), lambda _c: []) == []
    assert await state(store, job_id) is JobState.PENDING


async def test_scan_widens_the_candidates(store: Store) -> None:
    ids = [r.id for r in await store.submit([job() for _ in range(6)])]
    seen: list[int] = []

    def choose(candidates: Sequence[JobRecord]) -> list[int]:
        seen.append(len(candidates))
        return [candidates[-1].id]

    claimed = await store.claim(request(limit=1, scan=5), choose)
    assert seen == [5]
    assert [j.id for j in claimed] == [ids[4]]


async def test_scheduled_job_becomes_claimable_exactly_at_run_at(store: Store, clock) -> None:
    job_id = await submit(store, run_at=clock.now + 10)
    clock.advance(9.999)
    assert await claim_ids(store) == []
    assert await state(store, job_id) is JobState.SCHEDULED
    clock.advance(0.001)
    assert await claim_ids(store) == [job_id]


async def test_next_due_at(store: Store, clock) -> None:
    assert await store.next_due_at() is None
    start = clock.now
    await submit(store)
    await submit(store, run_at=start + 50)
    await submit(store, run_at=start + 20)
    assert await store.next_due_at() == start + 20
    clock.advance(20)
    await claim(store)
    assert await store.next_due_at() == start + 50


async def test_ttl_expires_a_job_not_started_in_time(store: Store, clock) -> None:
    job_id = await submit(store, expires_at=clock.now + 5)
    keeps = await submit(store, expires_at=clock.now + 100, domain="x", type="x::t")
    clock.advance(5)
    assert await claim_ids(store) == []
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.EXPIRED
    assert record.finished_at == clock.now
    assert record.error
    assert await state(store, keeps) is JobState.PENDING


async def test_ttl_does_not_touch_a_started_job(store: Store, clock) -> None:
    job_id = await submit(store, expires_at=clock.now + 5)
    claimed = await claim_one(store, job_id)
    clock.advance(10)
    assert await claim_ids(store) == []
    assert await complete(store, claimed.lease)
    assert await state(store, job_id) is JobState.COMPLETED


async def test_ttl_expiry_settles_dependents(store: Store, clock) -> None:
    dep = await submit(store, expires_at=clock.now + 5)
    cancels = await submit(store, depends_on=(dep,), on_dependency_failure="cancel")
    fails = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    ignores = await submit(store, depends_on=(dep,), on_dependency_failure="ignore")
    clock.advance(6)
    assert await claim_ids(store) == [ignores]
    assert await states(store, dep, cancels, fails) == [
        JobState.EXPIRED,
        JobState.CANCELLED,
        JobState.DEPENDENCY_FAILED,
    ]


async def test_ttl_expires_scheduled_jobs_and_counts_from_unblocking(store: Store, clock) -> None:
    scheduled = await submit(store, run_at=clock.now + 100, expires_at=clock.now + 5)
    dep = await submit(store, type="x::t")
    blocked = await submit(store, depends_on=(dep,), expires_at=clock.now + 5)
    clock.advance(10)
    await claim(store)
    # A blocked job's ttl has not started: it counts from when its dependencies complete.
    assert await states(store, scheduled, blocked) == [JobState.EXPIRED, JobState.BLOCKED]
    await run(store, dep, domains=("x",))
    unblocked = await store.get(blocked)
    assert (
        unblocked is not None
        and unblocked.state is JobState.PENDING
        and unblocked.expires_at == clock.now + 5
    )
    clock.advance(4)
    assert await states(store, blocked) == [JobState.PENDING]
    clock.advance(1)
    await claim(store)
    assert await states(store, blocked) == [JobState.EXPIRED]


async def test_aging_lets_an_old_low_priority_job_overtake(store: Store, clock) -> None:
    old = await submit(store, priority=0)
    clock.advance(100)
    new_high = [await submit(store, priority=20) for _ in range(2)]
    # Only the old job waited 60s: it gains 30, capped at 25.
    assert await store.age(older_than=60, step=30, cap=25) == 1
    record = await store.get(old)
    assert record is not None
    assert (record.priority, record.base_priority) == (25, 0)
    assert await claim_ids(store, limit=1) == [old]
    assert await claim_ids(store) == new_high


async def test_aging_steps_and_cap(store: Store, clock) -> None:
    job_id = await submit(store, priority=0)
    priorities = []
    for _ in range(4):
        clock.advance(10)
        await store.age(older_than=10, step=4, cap=10)
        record = await store.get(job_id)
        assert record is not None
        priorities.append(record.priority)
    assert priorities == [4, 8, 10, 10]


async def test_aging_waits_a_full_interval_after_each_boost(store: Store, clock) -> None:
    job_id = await submit(store, priority=0)
    clock.advance(10)
    assert await store.age(older_than=10, step=1, cap=100) == 1
    clock.advance(9)
    assert await store.age(older_than=10, step=1, cap=100) == 0
    clock.advance(1)
    assert await store.age(older_than=10, step=1, cap=100) == 1
    record = await store.get(job_id)
    assert record is not None and record.priority == 2


async def test_aging_ignores_jobs_that_are_not_pending(store: Store, clock) -> None:
    scheduled = await submit(store, run_at=clock.now + 1000)
    clock.advance(100)
    assert await store.age(older_than=10, step=5, cap=50) == 0
    record = await store.get(scheduled)
    assert record is not None and record.priority == 10


async def test_top_pending_priority(store: Store) -> None:
    assert await store.top_pending_priority(["d"], []) is None
    await submit(store, priority=3)
    await submit(store, priority=30, tags=("gpu",))
    await submit(store, priority=50, type="other::t")
    assert await store.top_pending_priority(["d"], []) == 3
    assert await store.top_pending_priority(["d"], ["gpu"]) == 30
    assert await store.top_pending_priority(["d", "other"], ["gpu"]) == 50
    assert await store.top_pending_priority([], ["gpu"]) is None
