"""What is particular to the memory store: atomic refusals, snapshot records, index cleanup.

The behaviour it shares with the SQL stores is the conformance suite's (the `store` fixture);
these tests look at what only the memory store could get wrong, some through its table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import pytest

from wireframe.store import (
    Complete,
    InvalidTransitionError,
    JobRecord,
    JobState,
    MemoryStore,
    PostgresStore,
    Release,
    Store,
    Submitted,
    UnknownJobError,
)
from wireframe.store.memory.table import Table

from store_support import claim, claim_ids, complete, job, request, submit, submit_many

pytestmark = pytest.mark.anyio


@pytest.fixture
async def memory(tmp_path, clock) -> AsyncIterator[MemoryStore]:
    """An open memory store on the fake clock."""
    store = MemoryStore(clock=clock)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def table(store: MemoryStore) -> Table:
    """The store's table (white box)."""
    assert store._table is not None
    return store._table


async def everything(store: Store) -> tuple[object, ...]:
    """All a caller can read back about the store's jobs."""
    jobs = await store.list_jobs(limit=10_000)
    return (
        jobs,
        [await store.get(j.id) for j in jobs],
        [await store.attempts(j.id) for j in jobs],
        await store.counts(),
        await store.schedules(),
        await store.next_due_at(),
    )


async def test_a_refused_submission_leaves_nothing(store: Store, clock) -> None:
    parent = await submit(store)
    dep = await submit(store)
    before = await everything(store)
    batch = [
        job(key="k", depends_on=(dep,), parent_id=parent),
        job(run_at=clock.now + 5, expires_at=clock.now + 9),
        job(depends_on=(dep, 999)),  # unknown: the whole batch is refused
    ]
    with pytest.raises(UnknownJobError):
        await store.submit(batch)
    assert await everything(store) == before
    # Nothing of the refused batch lingers: its key is free.
    [result] = await store.submit([job(key="k")])
    assert isinstance(result, Submitted) and result.id > dep


async def test_a_refused_child_leaves_its_parent_as_it_was(store: Store) -> None:
    parent = await submit(store)
    [running] = await claim(store)
    assert await complete(store, running.lease)
    before = await everything(store)
    with pytest.raises(InvalidTransitionError):
        await store.submit([job(), job(parent_id=parent)])
    assert await everything(store) == before
    assert running.id == parent


async def test_a_refused_release_leaves_the_whole_batch_undone(store: Store) -> None:
    a, b = await submit_many(store, 2)
    first, second = await claim(store)
    before = await everything(store)
    with pytest.raises(ValueError, match="wait_for"):
        await store.finish(
            [Complete(first.lease, "1"), Release(second.lease, "suspended", "s", wait_for="x:1")]
        )
    assert await everything(store) == before
    assert [first.id, second.id] == [a, b]


async def test_a_failing_chooser_undoes_the_claim_and_its_housekeeping(store: Store, clock) -> None:
    if isinstance(store, PostgresStore):
        pytest.skip("PostgreSQL's claim housekeeps in a transaction of its own")
    await submit(store, run_at=clock.now + 5)
    await submit(store, expires_at=clock.now + 5)
    clock.advance(10)  # one job is due, the other one's ttl ran out: housekeeping has work

    def chooser(candidates: Sequence[JobRecord]) -> list[int]:
        raise RuntimeError("chooser failed")

    before = await everything(store)
    with pytest.raises(RuntimeError):
        await store.claim(request(), chooser)
    assert await everything(store) == before


async def test_records_are_snapshots(store: Store) -> None:
    job_id = await submit(store, resources={"cpu": 2}, tags=("gpu",))
    [claimed] = await claim(store, tags=("gpu",))
    assert claimed.state is JobState.RUNNING
    claimed.resources["cpu"] = 99  # type: ignore[index]
    assert await complete(store, claimed.lease)
    assert claimed.state is JobState.RUNNING and claimed.result is None
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED and record.resources == {"cpu": 2}
    [attempt] = await store.attempts(job_id)
    assert attempt.outcome == "completed"


async def test_aging_reorders_the_pending_jobs(store: Store, clock) -> None:
    old = await submit_many(store, 3, priority=10)
    clock.advance(60)
    newer = await submit(store, priority=12)
    assert await store.age(30, 5, 100) == 3  # the old ones now rank 15, above the newer 12
    last = await submit(store, priority=15)
    assert await claim_ids(store, 2, lease_ttl=1000) == old[:2]  # held throughout
    clock.advance(60)
    assert await store.age(30, 5, 100) == 3  # 20, 17 and 20
    assert await claim_ids(store) == [old[2], last, newer]


async def test_indexes_are_empty_once_every_job_ended(memory: MemoryStore, clock) -> None:
    tb = table(memory)
    parent = await submit(memory)
    [running] = await claim(memory)
    await memory.submit([job(parent_id=parent, key=f"k{i}") for i in range(50)])
    ids = await submit_many(memory, 300, tags=("gpu",), expires_at=clock.now + 100)
    await submit_many(memory, 100, run_at=clock.now + 5)
    blocked = await submit(memory, depends_on=(ids[0],))
    await memory.finish([Complete(running.lease, None)])
    clock.advance(10)
    while jobs := await claim(memory, 64, tags=("gpu",)):
        for j in jobs:
            assert await complete(memory, j.lease)
    assert await memory.get(blocked) is not None
    records = await memory.list_jobs(limit=10_000)
    assert {j.state for j in records} == {JobState.COMPLETED}
    assert not any(tb.active.values())
    assert all(not lane.heap and lane.live == 0 and not lane.bases for lane in tb.lanes.values())
    assert tb.due == [] and tb.leases == [] and tb.expiry == []
    assert tb.keys == {} and tb.dependents == {} and tb.waits == {}


async def test_the_pending_index_stays_proportional_to_pending_jobs(memory: MemoryStore) -> None:
    tb = table(memory)
    ids = await submit_many(memory, 2_000)
    for job_id in ids[:1_900]:
        await memory.pause(job_id)
        await memory.resume(job_id)
        await memory.pause(job_id)
    [lane] = tb.lanes.values()
    assert lane.live == 100
    assert len(lane.heap) <= 2 * lane.live + 64
    assert await claim_ids(memory, 1_000) == ids[1_900:]


async def test_history_is_all_a_finished_job_keeps(memory: MemoryStore, clock) -> None:
    for _ in range(5):
        await submit_many(memory, 200)
        while jobs := await claim(memory, 64):
            assert all(await memory.finish([Complete(j.lease, None) for j in jobs]))
    tb = table(memory)
    assert len(tb.jobs) == 1_000 and not any(tb.active.values())
    clock.advance(1)
    assert await memory.prune(clock.now) == 1_000
    assert tb.jobs == {} and await memory.counts() == {}
