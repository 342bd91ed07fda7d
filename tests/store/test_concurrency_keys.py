"""Store conformance: concurrency keys (caps across claims) and fair share between keys."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from wireframe.store import JobRecord, Release, Store
from wireframe.store.flowkeys import KeyStats

from store_support import TTL, FakeClock, claim, complete, fail, job, release, submit

pytestmark = pytest.mark.anyio


def keyed(key: str, cap: int | None = 2, weight: float = 1.0, **kw: Any) -> dict[str, Any]:
    """Submit options of a job of concurrency key `key`."""
    return {"flow_key": f"d::t|{key}", "key_cap": cap, "key_weight": weight, **kw}


async def submit_keyed(store: Store, key: str, n: int, **kw: Any) -> list[int]:
    """Submit n jobs of `key` in one call; return their ids."""
    results = await store.submit([job(**keyed(key, **kw)) for _ in range(n)])
    return [r.id for r in results]


def per_key(jobs: list[JobRecord]) -> Counter[str | None]:
    """How many of `jobs` each key has."""
    return Counter(j.flow_key for j in jobs)


async def test_a_key_never_runs_more_than_its_cap(store: Store) -> None:
    await submit_keyed(store, "a", 5)
    await submit_keyed(store, "b", 3)
    first = await claim(store)
    assert per_key(first) == {"d::t|a": 2, "d::t|b": 2}
    assert await claim(store) == []  # both keys are at their cap: other keys would proceed
    assert await store.key_running(["d::t|a", "d::t|b", "d::t|c"]) == {"d::t|a": 2, "d::t|b": 2}
    a = next(j for j in first if j.flow_key == "d::t|a")
    assert await complete(store, a.lease)
    assert per_key(await claim(store)) == {"d::t|a": 1}


async def test_other_keys_and_keyless_jobs_proceed_past_a_capped_key(store: Store) -> None:
    await submit_keyed(store, "a", 10, cap=1)
    plain = await submit(store)
    other = await submit_keyed(store, "b", 1, cap=1)
    got = await claim(store)
    assert sorted(j.id for j in got if j.flow_key != "d::t|a") == sorted([plain, *other])
    assert per_key(got)["d::t|a"] == 1


async def test_a_key_without_a_cap_is_not_limited(store: Store) -> None:
    await submit_keyed(store, "a", 5, cap=None)
    assert len(await claim(store)) == 5


async def test_every_way_a_job_stops_running_frees_its_place(
    store: Store, clock: FakeClock
) -> None:
    await submit_keyed(store, "a", 6, cap=1, max_attempts=3)

    async def only() -> JobRecord:
        got = await claim(store)
        assert len(got) == 1, got
        return got[0]

    assert await fail(store, (await only()).lease, retry_at=clock.now)  # retry: pending again
    assert await release(store, (await only()).lease)  # released (e.g. preempted)
    assert await complete(store, (await only()).lease)
    assert await fail(store, (await only()).lease)  # failed for good
    lost = await only()
    assert await claim(store) == []
    clock.advance(TTL + 1)  # its worker is gone: the lease is reclaimed, the key freed
    again = await only()
    assert again.id != lost.id or again.attempt > lost.attempt
    assert await store.cancel(again.id) is not None
    assert await store.key_running(["d::t|a"]) in ({}, {"d::t|a": 1})


async def test_suspended_jobs_do_not_hold_their_key(store: Store, clock: FakeClock) -> None:
    await submit_keyed(store, "a", 2, cap=1)
    [first] = await claim(store)
    [ok] = await store.finish([Release(first.lease, "suspended", "sleep", run_at=clock.now + 60)])
    assert ok
    [second] = await claim(store)
    assert second.id != first.id


async def test_a_small_key_is_served_within_a_round_not_after_the_backlog(store: Store) -> None:
    big = await submit_keyed(store, "big", 200, cap=None)
    for _ in range(20):  # the big tenant has been running for a while
        [j] = await claim(store, limit=1)
        assert j.id in big
        assert await complete(store, j.lease)
    small = await submit_keyed(store, "small", 10, cap=None)
    order: list[int] = []
    while set(small) - set(order):
        [j] = await claim(store, limit=1)
        order.append(j.id)
        assert await complete(store, j.lease)
    # Two active keys: the small one's 10 jobs take at most about 2 x 10 claims.
    assert len(order) <= 2 * len(small) + 1
    assert sum(1 for i in order if i in big) <= len(small) + 1


async def test_weights_share_claims_in_proportion(store: Store) -> None:
    heavy = set(await submit_keyed(store, "heavy", 60, cap=None, weight=2.0))
    await submit_keyed(store, "light", 60, cap=None, weight=1.0)
    got = [j.id for j in await claim(store, limit=30)]
    share = sum(1 for i in got if i in heavy)
    assert 18 <= share <= 22  # two turns for one


async def test_priority_comes_before_turns(store: Store) -> None:
    await submit_keyed(store, "a", 5, cap=None)
    urgent = await submit_keyed(store, "b", 1, cap=None, priority=50)
    [first] = await claim(store, limit=1)
    assert first.id == urgent[0]


async def test_jobs_of_one_key_keep_their_order(store: Store) -> None:
    ids = await submit_keyed(store, "a", 5, cap=None)
    await submit_keyed(store, "b", 5, cap=None)
    got = [j.id for j in await claim(store, limit=10) if j.id in ids]
    assert got == ids


async def test_key_stats_count_jobs_held_by_a_cap(store: Store) -> None:
    await submit_keyed(store, "a", 5, cap=2)
    await submit_keyed(store, "b", 1, cap=2)
    await claim(store)
    assert await store.key_stats() == [KeyStats("d", "d::t", 3, 2)]


async def test_batches_stamp_turns_after_the_key_s_pending_jobs(store: Store) -> None:
    first = await submit_keyed(store, "a", 20, cap=None)  # one INSERT for the batch
    second = await submit_keyed(store, "a", 20, cap=None)
    mixed = await store.submit([job(**keyed(k, cap=None)) for k in ["b", "b", "b", "b", "c"] * 4])
    # b's 16 jobs and c's 4 take turns with a's backlog from the start.
    assert {j.id for j in await claim(store, limit=3)} == {first[0], mixed[0].id, mixed[4].id}
    order = [j.id for _ in range(60) for j in await claim(store, limit=1)]
    assert [i for i in order if i in first + second] == first[1:] + second


async def test_a_job_held_by_its_cap_is_not_a_reason_to_preempt(store: Store) -> None:
    await submit_keyed(store, "a", 2, cap=1, priority=30)
    await submit(store, priority=0)
    got = await claim(store, limit=2)
    assert sorted(j.priority for j in got) == [0, 30]
    # The other urgent job waits for its key, not for a worker: nothing to preempt for.
    assert await store.top_pending_priority(["d"], []) is None
    await submit(store, priority=10)
    assert await store.top_pending_priority(["d"], []) == 10
