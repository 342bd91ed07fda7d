"""Store conformance: debounced and throttled submissions, paused domains and job types."""

from __future__ import annotations

import pytest

from wireframe.store import Duplicate, JobState, PausedFlow, Store, Submitted

from store_support import DOMAIN, TYPE, claim, claim_ids, claim_one, complete, job, state, submit

pytestmark = pytest.mark.anyio


async def test_debounce_keeps_only_the_last_payload(store: Store, clock) -> None:
    [first] = await store.submit([job(payload='{"n": 1}', key="k", debounce=5.0)])
    assert isinstance(first, Submitted) and not first.replaced
    record = await store.get(first.id)
    assert record is not None
    assert record.state is JobState.SCHEDULED and record.run_at == clock.now + 5.0
    clock.advance(3)
    [second] = await store.submit([job(payload='{"n": 2}', key="k", debounce=5.0)])
    assert second == Submitted(first.id, replaced=True)
    record = await store.get(first.id)
    assert record is not None
    assert record.payload == '{"n": 2}'
    assert record.state is JobState.SCHEDULED and record.run_at == clock.now + 5.0
    # Not due at the first submission's time any more: pushed back by the second.
    clock.advance(3)
    assert await claim_ids(store) == []
    clock.advance(2)
    [claimed] = await claim(store)
    assert (claimed.id, claimed.payload) == (first.id, '{"n": 2}')
    assert len(await store.list_jobs()) == 1


async def test_debounce_in_one_batch_replaces_in_order(store: Store, clock) -> None:
    results = await store.submit(
        [job(payload=f'{{"n": {n}}}', key="k", debounce=1.0) for n in range(3)]
    )
    first = results[0]
    assert isinstance(first, Submitted) and not first.replaced
    assert results[1:] == [Submitted(first.id, replaced=True)] * 2
    record = await store.get(first.id)
    assert record is not None and record.payload == '{"n": 2}'


async def test_debounce_after_the_job_started_makes_a_new_job(store: Store, clock) -> None:
    [first] = await store.submit([job(payload='{"n": 1}', key="k", debounce=1.0)])
    clock.advance(1)
    running = await claim_one(store, first.id)
    [second] = await store.submit([job(payload='{"n": 2}', key="k", debounce=1.0)])
    assert isinstance(second, Submitted) and not second.replaced and second.id != first.id
    # The running job is not touched; the next submission replaces the new waiting one.
    [third] = await store.submit([job(payload='{"n": 3}', key="k", debounce=1.0)])
    assert third == Submitted(second.id, replaced=True)
    record = await store.get(first.id)
    assert record is not None and record.payload == '{"n": 1}'
    assert record.state is JobState.RUNNING
    # The new one may start while the first still runs (both hold the key then).
    clock.advance(1)
    [next_run] = await claim(store)
    assert (next_run.id, next_run.payload) == (second.id, '{"n": 3}')
    await complete(store, running.lease)
    # A plain submission with the key is still a duplicate of the active job.
    [plain] = await store.submit([job(key="k")])
    assert plain == Duplicate(second.id)


async def test_plain_key_dedup_still_holds_for_a_debounced_job(store: Store, clock) -> None:
    [first] = await store.submit([job(key="k", debounce=1.0)])
    assert isinstance(first, Submitted)
    assert await store.submit([job(key="k")]) == [Duplicate(first.id)]


async def test_debounce_ttl_counts_from_the_new_run_time(store: Store, clock) -> None:
    [first] = await store.submit(
        [job(key="k", debounce=5.0, run_at=clock.now + 5.0, expires_at=clock.now + 65.0)]
    )
    clock.advance(4)
    await store.submit(
        [job(key="k", debounce=5.0, run_at=clock.now + 5.0, expires_at=clock.now + 65.0)]
    )
    record = await store.get(first.id)
    assert record is not None and record.expires_at == clock.now + 65.0


async def test_debounce_leaves_a_paused_waiting_job_alone(store: Store, clock) -> None:
    [first] = await store.submit([job(payload='{"n": 1}', key="k", debounce=1.0)])
    assert isinstance(first, Submitted)
    await store.pause(first.id)
    [again] = await store.submit([job(payload='{"n": 2}', key="k", debounce=1.0)])
    assert again == Duplicate(first.id)
    record = await store.get(first.id)
    assert record is not None and record.payload == '{"n": 1}'


async def test_throttle_refuses_within_the_period(store: Store, clock) -> None:
    [first] = await store.submit([job(key="k", throttle=60.0)])
    assert isinstance(first, Submitted)
    running = await claim_one(store, first.id)
    await complete(store, running.lease)
    clock.advance(30)
    # The first job has ended, so plain dedup would accept: the throttle refuses.
    assert await store.submit([job(key="k", throttle=60.0)]) == [Duplicate(first.id)]
    # Other keys are throttled on their own.
    [other] = await store.submit([job(key="other", throttle=60.0)])
    assert isinstance(other, Submitted)
    clock.advance(30)
    [second] = await store.submit([job(key="k", throttle=60.0)])
    assert isinstance(second, Submitted) and second.id != first.id
    clock.advance(59)
    assert await store.submit([job(key="k", throttle=60.0)]) == [Duplicate(second.id)]


async def test_throttle_in_one_batch_accepts_the_first(store: Store, clock) -> None:
    results = await store.submit([job(key="k", throttle=10.0) for _ in range(3)])
    first = results[0]
    assert isinstance(first, Submitted)
    assert results[1:] == [Duplicate(first.id)] * 2


async def test_paused_domain_is_not_claimed_until_resumed(store: Store, clock) -> None:
    running_id = await submit(store)
    running = await claim_one(store, running_id)
    waiting = await submit(store)
    other = await submit(store, type="e::t")
    assert await store.set_paused("domain", DOMAIN, True) is True
    assert await store.set_paused("domain", DOMAIN, True) is False
    assert await store.paused() == [PausedFlow("domain", DOMAIN, clock.now)]
    assert await claim_ids(store, domains=(DOMAIN, "e")) == [other]
    assert await store.top_pending_priority((DOMAIN,), ()) is None
    # The running job goes on and finishes.
    assert await complete(store, running.lease)
    assert await state(store, waiting) is JobState.PENDING
    assert await store.set_paused("domain", DOMAIN, False) is True
    assert await store.set_paused("domain", DOMAIN, False) is False
    assert await store.paused() == []
    assert await claim_ids(store) == [waiting]


async def test_paused_type_is_not_claimed_until_resumed(store: Store, clock) -> None:
    paused = await submit(store, type=f"{DOMAIN}::slow", priority=30)
    plain = await submit(store, type=TYPE)
    await store.set_paused("type", f"{DOMAIN}::slow", True)
    assert await store.top_pending_priority((DOMAIN,), ()) == 10
    assert await claim_ids(store) == [plain]
    await store.set_paused("type", f"{DOMAIN}::slow", False)
    assert await claim_ids(store) == [paused]


async def test_the_key_stays_held_while_either_twin_is_active(store: Store, clock) -> None:
    [first] = await store.submit([job(key="k", debounce=1.0)])
    clock.advance(1)
    running = await claim_one(store, first.id)
    [waiting] = await store.submit([job(key="k", debounce=1.0)])
    assert isinstance(waiting, Submitted) and not waiting.replaced
    await store.cancel(waiting.id)
    # The started job still holds the key.
    assert await store.submit([job(key="k")]) == [Duplicate(first.id)]
    [again] = await store.submit([job(key="k", debounce=1.0)])
    assert isinstance(again, Submitted) and not again.replaced
    assert await complete(store, running.lease)
    # The waiting one holds it once the started one has ended.
    assert await store.submit([job(key="k")]) == [Duplicate(again.id)]
