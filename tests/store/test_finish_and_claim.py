"""Store conformance: writing outcomes and claiming new work in one step (`finish_and_claim`).

A busy worker writes the outcomes of the jobs it finished and claims work for the slots they
freed in one transaction. It must do exactly what `finish` then `claim` would, the claim
seeing what the finish did, and all of it or none of it.
"""

from __future__ import annotations

import attrs
import pytest

from wireframe.store import Complete, Fail, JobRecord, JobState, Store

from store_support import claim, claim_one, request, state, submit, submit_many

pytestmark = pytest.mark.anyio


async def test_outcomes_are_applied_and_free_slots_filled(store: Store, clock) -> None:
    a, b, c, d = await submit_many(store, 4)
    first, second = await claim(store, limit=2, worker="w1")
    assert (first.id, second.id) == (a, b)

    applied, claimed = await store.finish_and_claim(
        [Complete(first.lease, '"ok"'), Fail(second.lease, "boom")], request(10, worker="w2")
    )

    assert applied == [True, True]
    assert [j.id for j in claimed] == [c, d]
    assert all(j.state is JobState.RUNNING and j.worker_id == "w2" for j in claimed)
    assert [await state(store, i) for i in (a, b, c, d)] == [
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.RUNNING,
        JobState.RUNNING,
    ]
    assert [(x.outcome, x.worker_id) for x in await store.attempts(a)] == [("completed", "w1")]
    assert [(x.outcome, x.worker_id) for x in await store.attempts(c)] == [(None, "w2")]


async def test_a_stale_outcome_is_refused_and_the_claim_still_happens(store: Store) -> None:
    a, b = await submit_many(store, 2)
    [held] = await claim(store, limit=1)
    stale = attrs.evolve(held.lease, claim_seq=held.lease.claim_seq + 1)

    applied, claimed = await store.finish_and_claim([Complete(stale, "null")], request(10))

    assert applied == [False]
    assert [j.id for j in claimed] == [b]
    assert await state(store, a) is JobState.RUNNING


async def test_the_claim_sees_what_the_finish_did(store: Store) -> None:
    parent = await submit(store)
    running = await claim_one(store, parent)
    dependent = await submit(store, depends_on=(parent,))
    assert await state(store, dependent) is JobState.BLOCKED

    # Completing the dependency unblocks the dependent, which the same step claims.
    applied, claimed = await store.finish_and_claim([Complete(running.lease, "1")], request(10))

    assert applied == [True]
    assert [j.id for j in claimed] == [dependent]


async def test_nothing_is_written_when_the_chooser_fails(store: Store) -> None:
    a, b = await submit_many(store, 2)
    [held] = await claim(store, limit=1)
    assert held.id == a

    def chooser(candidates: object) -> list[int]:
        raise RuntimeError("chooser broke")

    with pytest.raises(RuntimeError, match="chooser broke"):
        await store.finish_and_claim([Complete(held.lease, "1")], request(10), chooser)

    assert await state(store, a) is JobState.RUNNING
    assert await state(store, b) is JobState.PENDING
    claimed: list[JobRecord] = await claim(store)
    assert [j.id for j in claimed] == [b]
