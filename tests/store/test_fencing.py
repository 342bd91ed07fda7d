"""Store conformance: every write a running job makes is fenced on its lease.

A write under a lease another claim has taken over (a stale attempt) is refused with `LOST`;
one under a lease whose job was asked to stop (cancelled, or a child failed with fail_fast) is
refused with `CANCEL_REQUESTED`. A refused write changes nothing.
"""

from __future__ import annotations

import pytest

from wireframe.store import JobRecord, LeaseStatus, Store

from store_support import TTL, claim_one, fail, job, submit

pytestmark = pytest.mark.anyio


async def stale_and_current(store: Store, clock) -> tuple[JobRecord, JobRecord]:
    """A job claimed twice: its first lease expired and a second claim took it over."""
    job_id = await submit(store, max_attempts=3)
    old = await claim_one(store, job_id, worker="stale")
    clock.advance(TTL + 1)
    new = await claim_one(store, job_id, worker="current")
    assert new.claim_seq > old.claim_seq
    return old, new


async def test_a_stale_attempt_cannot_emit_an_event(store: Store, clock) -> None:
    old, new = await stale_and_current(store, clock)
    refused = await store.emit_from_job(old.lease, 0, "$emit:go", "go", '"stale"', TTL)
    assert refused is LeaseStatus.LOST
    assert await store.get_event("go") is None
    assert await store.checkpoints(old.id) == []
    # The current attempt's emit sets the latch and records its checkpoint in the same step.
    assert await store.emit_from_job(new.lease, 0, "$emit:go", "go", '"current"', TTL) is True
    event = await store.get_event("go")
    assert event is not None and event.payload == '"current"'
    [mark] = await store.checkpoints(new.id)
    assert (mark.seq, mark.name, mark.kind, mark.value) == (0, "$emit:go", "emit", "true")


async def test_an_emit_from_a_job_records_whether_it_won(store: Store) -> None:
    first, second = await store.submit([job(), job()])
    a = await claim_one(store, first.id, limit=1)
    b = await claim_one(store, second.id, limit=1)
    assert await store.emit_from_job(a.lease, 0, "$emit:go", "go", '"a"', TTL) is True
    assert await store.emit_from_job(b.lease, 0, "$emit:go", "go", '"b"', TTL) is False
    [mark] = await store.checkpoints(b.id)
    assert (mark.kind, mark.value) == ("emit", "false")
    event = await store.get_event("go")
    assert event is not None and event.payload == '"a"'


async def test_a_stale_attempt_cannot_checkpoint_or_spawn(store: Store, clock) -> None:
    old, new = await stale_and_current(store, clock)
    assert await store.put_checkpoint(old.lease, 0, "s", "step", "1", TTL) is LeaseStatus.LOST
    spawned = await store.spawn_child(old.lease, 0, "$spawn", job(parent_id=old.id), TTL)
    assert spawned is LeaseStatus.LOST
    assert await store.checkpoints(old.id) == []
    assert await store.list_jobs(parent_id=old.id) == []
    assert await store.put_checkpoint(new.lease, 0, "s", "step", "2", TTL) is LeaseStatus.OK


async def test_writes_of_a_cancelled_job_are_refused_as_cancel_requested(store: Store) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    await store.cancel(job_id)
    lease = claimed.lease
    cancel = LeaseStatus.CANCEL_REQUESTED
    assert await store.put_checkpoint(lease, 0, "s", "step", "1", TTL) is cancel
    assert await store.spawn_child(lease, 0, "$spawn", job(parent_id=job_id), TTL) is cancel
    assert await store.emit_from_job(lease, 0, "$emit:go", "go", None, TTL) is cancel
    assert await store.get_event("go") is None
    assert await store.checkpoints(job_id) == []
    assert await store.list_jobs(parent_id=job_id) == []


async def test_writes_of_a_parent_whose_child_failed_fast_are_refused(store: Store) -> None:
    parent_id = await submit(store, type="p::t")
    parent = await claim_one(store, parent_id, domains=("p",))
    child_id = await store.spawn_child(
        parent.lease, 0, "$spawn", job("c::t", parent_id=parent_id), TTL
    )
    assert isinstance(child_id, int) and not isinstance(child_id, LeaseStatus)
    child = await claim_one(store, child_id, domains=("c",))
    assert await fail(store, child.lease, "child broke")
    cancel = LeaseStatus.CANCEL_REQUESTED
    assert await store.put_checkpoint(parent.lease, 1, "s", "step", "1", TTL) is cancel
    assert await store.emit_from_job(parent.lease, 1, "$emit:go", "go", None, TTL) is cancel
    assert await store.get_event("go") is None
