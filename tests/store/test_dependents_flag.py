"""Store conformance: dependencies resolve through each job's `has_dependents` flag (migration 3).

Ending a job skips the dependents query unless its row says something depends on it, so the
flag must be set however the dependency came to be: in the same submission as the dependency's
neighbours, or in a later transaction while the dependency is already running.
"""

from __future__ import annotations

import pytest

from wireframe.store import JobState, Store

from store_support import claim_ids, claim_one, complete, fail, job, run, state, states, submit

pytestmark = pytest.mark.anyio


async def test_dependent_unblocks_when_its_dependency_completes(store: Store) -> None:
    a = await submit(store, type="a::t")
    b = await submit(store, depends_on=(a,))
    assert await state(store, b) is JobState.BLOCKED
    claimed = await claim_one(store, a, domains=("a",))
    assert await complete(store, claimed.lease)
    record = await store.get(b)
    assert record is not None
    assert record.state is JobState.PENDING and record.depends_on == ()
    assert await claim_ids(store) == [b]


async def test_dependent_submitted_while_its_dependency_runs_unblocks(store: Store) -> None:
    a = await submit(store, type="a::t")
    running = await claim_one(store, a, domains=("a",))
    # A was inserted (and claimed) before anything depended on it.
    b = await submit(store, depends_on=(a,))
    record = await store.get(b)
    assert record is not None
    assert record.state is JobState.BLOCKED and record.depends_on == (a,)
    assert await claim_ids(store) == []
    assert await complete(store, running.lease)
    assert await state(store, b) is JobState.PENDING
    assert await claim_ids(store) == [b]


async def test_dependent_submitted_later_while_dependency_is_pending_unblocks(
    store: Store,
) -> None:
    a = await submit(store, type="a::t")
    b = await submit(store, depends_on=(a,))
    await run(store, a, domains=("a",))
    assert await claim_ids(store) == [b]


async def test_dependents_from_several_later_submissions_all_unblock(store: Store) -> None:
    a = await submit(store, type="a::t")
    first = await submit(store, depends_on=(a,))
    running = await claim_one(store, a, domains=("a",))
    results = await store.submit([job(depends_on=(a,)), job(depends_on=(a,))])
    later = [r.id for r in results]
    assert await states(store, first, *later) == [JobState.BLOCKED] * 3
    assert await complete(store, running.lease)
    assert await states(store, first, *later) == [JobState.PENDING] * 3
    assert sorted(await claim_ids(store)) == sorted([first, *later])


async def test_dependent_submitted_while_dependency_runs_is_cancelled_when_it_fails(
    store: Store,
) -> None:
    a = await submit(store, type="a::t")
    running = await claim_one(store, a, domains=("a",))
    cancel = await submit(store, depends_on=(a,), on_dependency_failure="cancel")
    failed = await submit(store, depends_on=(a,), on_dependency_failure="fail")
    ignore = await submit(store, depends_on=(a,), on_dependency_failure="ignore")
    assert await fail(store, running.lease)
    assert await states(store, a, cancel, failed, ignore) == [
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.DEPENDENCY_FAILED,
        JobState.PENDING,
    ]
    record = await store.get(cancel)
    assert record is not None and str(a) in (record.error or "")
    assert await claim_ids(store) == [ignore]


async def test_chain_submitted_job_by_job_completes_link_by_link(store: Store) -> None:
    a = await submit(store)
    running = await claim_one(store, a)
    b = await submit(store, depends_on=(a,))
    c = await submit(store, depends_on=(b,))
    assert await complete(store, running.lease)
    assert await states(store, b, c) == [JobState.PENDING, JobState.BLOCKED]
    await run(store, b)
    assert await state(store, c) is JobState.PENDING
    await run(store, c)
    assert await states(store, a, b, c) == [JobState.COMPLETED] * 3


async def test_dependency_retried_after_failure_then_completing_unblocks_a_new_dependent(
    store: Store,
) -> None:
    a = await submit(store, type="a::t")
    assert await fail(store, (await claim_one(store, a, domains=("a",))).lease)
    await store.retry(a)
    running = await claim_one(store, a, domains=("a",))
    b = await submit(store, depends_on=(a,))
    assert await state(store, b) is JobState.BLOCKED
    assert await complete(store, running.lease)
    assert await claim_ids(store) == [b]


async def test_dependency_whose_lease_expired_unblocks_after_its_retry_completes(
    store: Store, clock
) -> None:
    a = await submit(store, type="a::t", max_attempts=2)
    await claim_one(store, a, domains=("a",), worker="gone")
    b = await submit(store, depends_on=(a,))
    clock.advance(10_000)  # the first lease runs out; housekeeping puts A back to pending
    again = await claim_one(store, a, domains=("a",), worker="w2")
    assert again.attempt == 2
    assert await state(store, b) is JobState.BLOCKED
    assert await complete(store, again.lease)
    assert await claim_ids(store) == [b]
