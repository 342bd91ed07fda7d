"""Store conformance: a job that ends no longer says why it once waited ("retry after attempt
2" on a job that failed for good, or completed, was a stale report)."""

from __future__ import annotations

import pytest

from wireframe.store import JobState, Store

from store_support import claim_one, complete, fail, submit

pytestmark = pytest.mark.anyio


async def _retried_once(store: Store, clock) -> int:
    job_id = await submit(store, max_attempts=2)
    first = await claim_one(store, job_id)
    assert await fail(store, first.lease, retry_at=clock.now)
    waiting = await store.get(job_id)
    assert waiting is not None and waiting.reason == "retry after attempt 1"
    return job_id


@pytest.mark.parametrize("ending", ["completed", "failed"])
async def test_an_ended_job_keeps_no_reason_it_waited_for(store: Store, clock, ending: str) -> None:
    job_id = await _retried_once(store, clock)
    second = await claim_one(store, job_id)
    if ending == "completed":
        assert await complete(store, second.lease)  # the plain path: no parent, no dependents
    else:
        assert await fail(store, second.lease, retry_at=clock.now)  # no attempt left
    ended = await store.get(job_id)
    assert ended is not None and ended.state is JobState(ending)
    assert ended.reason is None


async def test_a_job_with_dependents_completes_without_a_stale_reason(store: Store, clock) -> None:
    job_id = await _retried_once(store, clock)
    await submit(store, depends_on=(job_id,))  # a dependent: the general completion path
    claimed = await claim_one(store, job_id)
    assert await complete(store, claimed.lease)
    ended = await store.get(job_id)
    assert ended is not None and ended.state is JobState.COMPLETED
    assert ended.reason is None
