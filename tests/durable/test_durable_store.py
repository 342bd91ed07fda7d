"""Store-level guarantees of durable jobs, on the memory and SQLite stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wireframe.durable import ChildHandle, DurableRun, LeaseLost
from wireframe.store import (
    ClaimRequest,
    JobRecord,
    JobState,
    LeaseStatus,
    MemoryStore,
    NewJob,
    Release,
    SqliteStore,
    Store,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    s: Store = MemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "d.db")
    await s.open()
    yield s
    await s.close()


async def claim_one(store: Store, worker: str = "w1", ttl: float = 30.0) -> JobRecord:
    [job] = await store.claim(ClaimRequest(worker, 1, ttl, ("d",)))
    return job


def run_for(store: Store, job: JobRecord) -> DurableRun:
    return DurableRun(
        store,
        job.lease,
        30.0,
        job.type,
        build_child=lambda payload, options: NewJob("d::child", "d", "{}", parent_id=job.id),
        decode_result=lambda text: text,
    )


async def test_a_stale_writer_cannot_checkpoint_over_a_newer_attempt(store: Store) -> None:
    await store.submit([NewJob("d::a", "d", "{}", max_attempts=3)])
    old = await claim_one(store, ttl=-1.0)  # a lease that has already expired
    new = await claim_one(store, "w2")  # reclaimed by another worker
    assert new.id == old.id and new.claim_seq == old.claim_seq + 1
    with pytest.raises(LeaseLost) as lost:
        await run_for(store, old).step("y", lambda: 1)
    assert lost.value.status is LeaseStatus.LOST
    assert await store.put_checkpoint(old.lease, 0, "x", "step", "1", 30.0) is LeaseStatus.LOST
    assert await store.put_checkpoint(new.lease, 0, "x", "step", "2", 30.0) is LeaseStatus.OK
    spawned = await store.spawn_child(old.lease, 1, "$spawn", NewJob("d::c", "d", "{}"), 30.0)
    assert spawned is LeaseStatus.LOST
    [mark] = await store.checkpoints(new.id)
    assert mark.value == "2"


async def test_a_cancelled_job_gets_its_checkpoint_rejected(store: Store) -> None:
    await store.submit([NewJob("d::a", "d", "{}")])
    job = await claim_one(store)
    await store.cancel(job.id)
    refused = await store.put_checkpoint(job.lease, 0, "x", "step", "1", 30.0)
    assert refused is LeaseStatus.CANCEL_REQUESTED


async def test_an_emit_just_before_suspension_is_never_lost(store: Store) -> None:
    await store.submit([NewJob("d::a", "d", "{}")])
    job = await claim_one(store)
    # The handler looked for the event (not there yet); the emit lands before it suspends.
    assert await store.get_event("go") is None
    assert await store.emit_event("go", '"payload"')
    [ok] = await store.finish([Release(job.lease, "suspended", "wait", 9e15, "event:go")])
    assert ok
    after = await store.get(job.id)
    assert after is not None and after.state is JobState.PENDING


async def test_emit_wakes_a_suspended_job_and_the_first_emit_wins(store: Store) -> None:
    await store.submit([NewJob("d::a", "d", "{}")])
    job = await claim_one(store)
    await store.finish([Release(job.lease, "suspended", "wait", 9e15, "event:go")])
    assert (await store.get(job.id)).state is JobState.SUSPENDED  # type: ignore[union-attr]
    assert await store.emit_event("go", '"first"') is True
    assert await store.emit_event("go", '"second"') is False
    event = await store.get_event("go")
    assert event is not None and event.payload == '"first"'
    assert (await store.get(job.id)).state is JobState.PENDING  # type: ignore[union-attr]


async def test_spawn_is_recorded_with_the_child_and_a_join_waits_for_it(store: Store) -> None:
    await store.submit([NewJob("d::a", "d", "{}")])
    parent = await claim_one(store)
    run = run_for(store, parent)
    handle = await run.spawn({}, {})
    [mark] = await store.checkpoints(parent.id)
    assert (mark.kind, mark.value) == ("spawn", str(handle.id))
    child = await store.get(handle.id)
    assert child is not None and child.parent_id == parent.id
    # Joining an unfinished child suspends the parent until the child ends.
    await store.finish([Release(parent.lease, "suspended", "join", 9e15, f"job:{handle.id}")])
    assert (await store.get(parent.id)).state is JobState.SUSPENDED  # type: ignore[union-attr]
    [running_child] = await store.claim(ClaimRequest("w1", 5, 30.0, ("d",)))
    assert running_child.id == handle.id
    from wireframe.store import Fail

    await store.finish([Fail(running_child.lease, "boom")])
    woke = await store.get(parent.id)
    assert woke is not None and woke.state is JobState.PENDING, "join must wake, not fail_fast"
    assert isinstance(handle, ChildHandle)
