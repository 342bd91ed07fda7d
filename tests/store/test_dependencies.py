"""Store conformance: dependencies between jobs."""

from __future__ import annotations

import pytest

from wireframe.store import JobState, Store

from store_support import claim_ids, claim_one, fail, run, state, states, submit

pytestmark = pytest.mark.anyio


async def test_blocked_until_all_dependencies_complete(store: Store) -> None:
    a = await submit(store, type="a::t")
    b = await submit(store, type="b::t")
    c = await submit(store, depends_on=(a, b))
    assert await claim_ids(store) == []
    await run(store, a, domains=("a",))
    record = await store.get(c)
    assert record is not None
    assert record.state is JobState.BLOCKED and record.depends_on == (b,)
    assert await claim_ids(store) == []
    await run(store, b, domains=("b",))
    record = await store.get(c)
    assert record is not None
    assert record.state is JobState.PENDING and record.depends_on == ()
    assert await claim_ids(store) == [c]


async def test_unblocked_job_with_future_run_at_is_scheduled(store: Store, clock) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,), run_at=clock.now + 100)
    await run(store, dep, domains=("a",))
    assert await state(store, job_id) is JobState.SCHEDULED
    clock.advance(100)
    assert await claim_ids(store) == [job_id]


async def test_cancel_policy_cascades(store: Store) -> None:
    root = await submit(store, type="a::t")
    mid = await submit(store, depends_on=(root,), on_dependency_failure="cancel")
    leaf = await submit(store, depends_on=(mid,), on_dependency_failure="cancel")
    leaf_fail = await submit(store, depends_on=(mid,), on_dependency_failure="fail")
    await fail(store, (await claim_one(store, root, domains=("a",))).lease)
    assert await states(store, root, mid, leaf, leaf_fail) == [
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.CANCELLED,
        JobState.DEPENDENCY_FAILED,
    ]
    record = await store.get(mid)
    assert record is not None and str(root) in (record.error or "")
    assert record.finished_at is not None


async def test_fail_policy_does_not_cascade(store: Store) -> None:
    root = await submit(store, type="a::t")
    mid = await submit(store, depends_on=(root,), on_dependency_failure="fail")
    leaf = await submit(store, depends_on=(mid,), on_dependency_failure="cancel")
    await fail(store, (await claim_one(store, root, domains=("a",))).lease)
    assert await states(store, mid, leaf) == [JobState.DEPENDENCY_FAILED, JobState.BLOCKED]
    assert await claim_ids(store) == []


async def test_ignore_policy_runs_anyway(store: Store) -> None:
    a = await submit(store, type="a::t")
    b = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(a, b), on_dependency_failure="ignore")
    await fail(store, (await claim_ids_one(store, a)).lease)
    assert await state(store, job_id) is JobState.BLOCKED  # still waits for b
    await store.cancel(b)
    assert await state(store, job_id) is JobState.PENDING
    assert await claim_ids(store) == [job_id]


async def test_cancelled_dependency_fails_dependents(store: Store) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    assert await store.cancel(dep) is JobState.CANCELLED
    assert await state(store, job_id) is JobState.DEPENDENCY_FAILED


async def test_dependency_retried_after_failure_does_not_unblock_failed_dependents(
    store: Store,
) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    await fail(store, (await claim_ids_one(store, dep)).lease)
    await store.retry(dep)
    await run(store, dep, domains=("a",))
    assert await state(store, job_id) is JobState.DEPENDENCY_FAILED


async def test_dependency_on_a_paused_blocked_job(store: Store) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,))
    assert await store.pause(job_id) == 1
    await run(store, dep, domains=("a",))
    assert await state(store, job_id) is JobState.PAUSED
    assert await store.resume(job_id) == 1
    assert await claim_ids(store) == [job_id]


async def test_dependency_shared_by_many_dependents(store: Store) -> None:
    dep = await submit(store, type="a::t")
    ids = [await submit(store, depends_on=(dep,)) for _ in range(5)]
    await run(store, dep, domains=("a",))
    assert await claim_ids(store) == ids


async def claim_ids_one(store: Store, job_id: int):  # type: ignore[no-untyped-def]
    """Claim exactly `job_id` from domain a."""
    return await claim_one(store, job_id, limit=1, domains=("a",))
