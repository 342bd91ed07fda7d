"""The sampler: bounded history, per-domain rates, a budget for slow stores; plot geometry."""

from __future__ import annotations

import pytest
from dashboard_support import add

from wireframe.dashboard import sampler as sampling
from wireframe.dashboard.plots import nice_top, plot
from wireframe.dashboard.sampler import Sampler
from wireframe.store import JobState, NewJob, Store

pytestmark = pytest.mark.anyio


async def test_history_and_domains_stay_bounded(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sampling, "MAX_DOMAINS", 3)
    for n in range(5):
        await add(store, type=f"d{n}::t")
    s = Sampler(store, interval=1.0, history=4)
    for _ in range(10):
        await s.sample()
    assert sorted(s.domains()) == ["d0", "d1", "d2"]
    assert all(len(points) == 4 for points in s.domains().values())
    assert s.domains()["d0"][-1].queued == 1


async def test_versions_move_only_when_the_store_changes(store: Store) -> None:
    s = Sampler(store, interval=1.0)
    first = (await s.sample()).version
    assert (await s.sample()).version == first
    await add(store)
    assert (await s.sample()).version == first + 1
    assert await s.changed(first) == first + 1


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_store_time_is_paid_from_a_one_percent_allowance(store: Store) -> None:
    clock = Clock()
    s = Sampler(store, interval=2.0, clock=clock)
    await s.sample(free=True)  # at start: counts, charges nothing
    assert s.allowance == 0.0
    clock.now += 100.0  # a hundred seconds earn one second of store time
    assert s.allowance == pytest.approx(1.0)
    s.charge(3.0)  # pages served, say
    assert s.allowance == pytest.approx(-2.0)
    # overdrawn: the counts of active jobs are not taken again; the previous ones stand
    await add(store)
    sample = await s.sample()
    assert sample.active == {} and sample.activity.latest_id is not None
    clock.now += 1000.0  # the allowance saves up to MAX_ALLOWANCE, no more
    assert s.allowance == pytest.approx(sampling.MAX_ALLOWANCE)
    sample = await s.sample()
    assert sum(sample.active.values()) == 1


def test_plots_scale_to_round_tops() -> None:
    assert [nice_top(v) for v in (0, 1, 3, 7, 10, 11, 420)] == [1, 1, 5, 10, 10, 20, 500]
    p = plot("depth", [0.0, 1.0, 2.0], [("line-queued", "pending", [0, 5, 10])])
    assert p.top == 10 and p.span == 2.0
    assert p.lines[0].points.split()[0].endswith(",86.0") and p.lines[0].last == 10


async def test_a_grown_backlog_is_counted_only_once_the_allowance_covers_it(store: Store) -> None:
    clock = Clock()
    s = Sampler(store, interval=2.0, clock=clock)
    await s.sample(free=True)  # an empty store: counting cost nothing
    await store.submit([NewJob(type="d::t", domain="d", payload="{}") for _ in range(2000)])
    clock.now += 0.5  # 5 ms of allowance: less than 2000 jobs are estimated to cost
    assert s.allowance < 2000 * sampling.ROW_COST
    sample = await s.sample()
    assert sample.active == {} and sample.activity.latest_id == 2000
    clock.now += 1000.0
    sample = await s.sample()
    assert sample.active == {("d", JobState.PENDING): 2000}
