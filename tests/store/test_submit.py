"""Store conformance: submitting jobs."""

from __future__ import annotations

import pytest

from wireframe.store import (
    Duplicate,
    InvalidTransitionError,
    JobState,
    Store,
    Submitted,
    UnknownJobError,
)

from store_support import claim_one, complete, fail, job, run, state, submit

pytestmark = pytest.mark.anyio


async def test_plain_job_is_pending_and_stored_as_given(store: Store, clock) -> None:
    job_id = await submit(
        store,
        payload='{"x": 1}',
        priority=7,
        tags=("b", "a"),
        resources={"gpu": 1},
        max_attempts=3,
    )
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.PENDING
    assert (record.type, record.domain, record.payload) == ("d::t", "d", '{"x": 1}')
    assert (record.priority, record.base_priority) == (7, 7)
    assert record.tags == ("a", "b")
    assert dict(record.resources) == {"gpu": 1}
    assert record.max_attempts == 3
    assert record.attempt == 0
    assert record.created_at == clock.now
    assert record.run_at == clock.now
    assert record.started_at is None and record.finished_at is None


async def test_future_run_at_is_scheduled_and_past_run_at_is_pending(store: Store, clock) -> None:
    later = await submit(store, run_at=clock.now + 60)
    earlier = await submit(store, run_at=clock.now - 60)
    now = await submit(store, run_at=clock.now)
    assert await state(store, later) is JobState.SCHEDULED
    assert await state(store, earlier) is JobState.PENDING
    assert await state(store, now) is JobState.PENDING


async def test_job_with_active_dependency_is_blocked(store: Store) -> None:
    dep = await submit(store)
    blocked = await submit(store, depends_on=(dep,))
    record = await store.get(blocked)
    assert record is not None
    assert record.state is JobState.BLOCKED
    assert record.depends_on == (dep,)


async def test_dependency_already_completed_does_not_block(store: Store) -> None:
    dep = await submit(store)
    await run(store, dep)
    assert await state(store, await submit(store, depends_on=(dep,))) is JobState.PENDING


async def test_ids_increase(store: Store) -> None:
    results = await store.submit([job() for _ in range(5)])
    ids = [r.id for r in results]
    assert ids == sorted(ids) and len(set(ids)) == 5
    [later] = await store.submit([job()])
    assert later.id > max(ids)


async def test_ids_are_never_reused_after_prune(store: Store, clock) -> None:
    ids = []
    for _ in range(3):
        ids.append(await submit(store))
        await run(store, ids[-1])
    clock.advance(10)
    assert await store.prune(clock.now) == 3
    assert await store.get(ids[-1]) is None
    assert await submit(store) > ids[-1]


async def test_unknown_dependency_rejects_the_whole_batch(store: Store) -> None:
    existing = await submit(store)
    batch = [job(), job(key="k"), job(depends_on=(existing, 999_999)), job()]
    with pytest.raises(UnknownJobError) as info:
        await store.submit(batch)
    assert info.value.job_id == 999_999
    assert "999999" in str(info.value)
    remaining = await store.list_jobs()
    assert [j.id for j in remaining] == [existing]
    # The key of the rejected batch was never taken.
    assert isinstance((await store.submit([job(key="k")]))[0], Submitted)


async def test_unknown_parent_rejects_the_whole_batch(store: Store) -> None:
    with pytest.raises(UnknownJobError):
        await store.submit([job(), job(parent_id=424_242)])
    assert await store.list_jobs() == []


async def test_parent_must_be_active(store: Store) -> None:
    parent = await submit(store)
    await run(store, parent)
    with pytest.raises(InvalidTransitionError, match=str(parent)):
        await store.submit([job(), job(parent_id=parent)])
    assert len(await store.list_jobs()) == 1


async def test_dedup_key_returns_existing_id_while_active(store: Store) -> None:
    first = await submit(store, key="k")
    [again] = await store.submit([job(key="k")])
    assert again == Duplicate(first)
    assert again.id == first
    # Another job type may use the same key.
    other = await submit(store, type="d::other", key="k")
    assert other != first
    # While running the key is still held.
    claimed = await claim_one(store, first, exclude_types=("d::other",))
    assert (await store.submit([job(key="k")]))[0] == Duplicate(first)
    assert await complete(store, claimed.lease)
    # Once ended, the key is free again.
    [fresh] = await store.submit([job(key="k")])
    assert isinstance(fresh, Submitted) and fresh.id > first


async def test_dedup_key_free_after_failure(store: Store) -> None:
    first = await submit(store, key="k")
    claimed = await claim_one(store, first)
    assert await fail(store, claimed.lease)
    assert await state(store, first) is JobState.FAILED
    assert isinstance((await store.submit([job(key="k")]))[0], Submitted)


async def test_dedup_key_held_by_scheduled_and_blocked_jobs(store: Store, clock) -> None:
    scheduled = await submit(store, key="s", run_at=clock.now + 100)
    dep = await submit(store)
    blocked = await submit(store, key="b", depends_on=(dep,))
    assert await store.submit([job(key="s"), job(key="b")]) == [
        Duplicate(scheduled),
        Duplicate(blocked),
    ]


async def test_duplicate_keys_within_one_batch(store: Store) -> None:
    results = await store.submit([job(key="a"), job(key="b"), job(key="a"), job()])
    first, second, dup, plain = results
    assert isinstance(first, Submitted) and isinstance(second, Submitted)
    assert dup == Duplicate(first.id)
    assert isinstance(plain, Submitted)
    assert len(await store.list_jobs()) == 3


async def test_dependency_failed_before_submit(store: Store) -> None:
    dep = await submit(store)
    await fail(store, (await claim_one(store, dep)).lease)
    cancelled = await submit(store, depends_on=(dep,), on_dependency_failure="cancel")
    dep_failed = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    ignored = await submit(store, depends_on=(dep,), on_dependency_failure="ignore")
    assert await state(store, cancelled) is JobState.CANCELLED
    assert await state(store, dep_failed) is JobState.DEPENDENCY_FAILED
    assert await state(store, ignored) is JobState.PENDING
    record = await store.get(dep_failed)
    assert record is not None and str(dep) in (record.error or "")
    assert record.finished_at is not None


async def test_submit_nothing(store: Store) -> None:
    assert await store.submit([]) == []


async def test_unknown_job_lookups(store: Store) -> None:
    assert await store.get(12345) is None
    with pytest.raises(UnknownJobError):
        await store.cancel(12345)
