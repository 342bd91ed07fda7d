"""Store conformance: the workers table (`put_worker`, `workers`, `remove_worker`) and the
prune filters."""

from __future__ import annotations

import pytest

from wireframe.store import LOST_WORKERS_KEPT, JobState, NewJob, Store, WorkerInfo

from store_support import FakeClock

pytestmark = pytest.mark.anyio


def info(worker_id: str = "w1", held: int = 0, ttl: float = 30.0) -> WorkerInfo:
    return WorkerInfo(
        worker_id=worker_id,
        host="box",
        pid=42,
        domains=("media",),
        tags=("gpu",),
        resources={"vram": 2},
        held=held,
        ttl=ttl,
    )


async def test_a_worker_row_is_refreshed_lost_and_removed(store: Store, clock: FakeClock) -> None:
    start = clock.now
    await store.put_worker(info(), starting=True)
    (row,) = await store.workers()
    assert row.info == info() and row.started_at == row.heartbeat_at == start and not row.lost

    clock.advance(10)
    await store.put_worker(info(held=3))
    (row,) = await store.workers()
    assert row.info.held == 3 and row.started_at == start and row.heartbeat_at == start + 10

    clock.advance(31)  # no refresh within its ttl: lost, still listed
    (row,) = await store.workers()
    assert row.lost

    await store.put_worker(info(), starting=True)  # the same id starts again
    (row,) = await store.workers()
    assert row.started_at == clock.now and not row.lost

    await store.remove_worker("w1")
    await store.remove_worker("w1")  # no error
    assert await store.workers() == []


async def test_workers_lost_long_ago_are_deleted(store: Store, clock: FakeClock) -> None:
    await store.put_worker(info("old"), starting=True)
    clock.advance(30 + LOST_WORKERS_KEPT - 1)
    await store.put_worker(info("new"), starting=True)
    assert [w.info.worker_id for w in await store.workers()] == ["new", "old"]
    clock.advance(2)
    await store.put_worker(info("new"))
    assert [w.info.worker_id for w in await store.workers()] == ["new"]


async def test_prune_by_state_and_domain_and_dry_run(store: Store, clock: FakeClock) -> None:
    for domain in ("a", "a", "b"):
        await store.submit([NewJob(f"{domain}::t", domain, "{}")])
    await store.cancel(1)
    await store.cancel(3)
    clock.advance(10)
    now = clock.now
    assert await store.prune(now, dry_run=True) == 2
    assert await store.prune(now, domain="a", dry_run=True) == 1
    assert await store.prune(now, states=[JobState.FAILED]) == 0
    assert len(await store.list_jobs()) == 3
    assert await store.prune(now, states=[JobState.CANCELLED], domain="b") == 1
    assert [j.id for j in await store.list_jobs()] == [1, 2]
