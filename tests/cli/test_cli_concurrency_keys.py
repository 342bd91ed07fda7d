"""Concurrency keys across worker processes: `python -m wireframe worker` x4 on one store.

On one SQLite file and on PostgreSQL, four worker processes (eight jobs each at a time) never
run more than `max_per_key` jobs of one account at once; a worker SIGKILLed while it holds a
keyed job keeps the key taken until the job's lease is reclaimed, and not after.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keys_app
import pytest
from cli_support import WAIT, Workers, in_store, wait_until

from wireframe import Scheduler
from wireframe.store import JobState, Store

pytestmark = pytest.mark.slow


@pytest.fixture
def workers(store_url: str) -> Iterator[Workers]:
    w = Workers(store_url, "keys_app:scheduler")
    yield w
    w.stop_all()


def submit(url: str, payloads: list[dict[str, Any]]) -> list[int]:
    """Submit `work` jobs through a scheduler that runs no worker (the key is computed here)."""

    async def go(store: Store) -> list[int]:
        async with Scheduler(store, domains=[keys_app.accounts], worker=False) as sched:
            return [r.id for r in await sched.submit_many(payloads, type=keys_app.work)]

    return list(in_store(url, go))


def all_ended(url: str, ids: list[int]) -> list[Any] | None:
    async def go(store: Store) -> list[Any] | None:
        jobs = [await store.get(i) for i in ids]
        return jobs if all(j is not None and j.terminal for j in jobs) else None

    return in_store(url, go)  # type: ignore[no-any-return]


def test_four_workers_never_run_more_than_the_cap_of_one_key(
    workers: Workers, tmp_path: Path
) -> None:
    payloads = [{"dir": str(tmp_path), "acct": f"a{i % 3}", "hold": 0.1} for i in range(90)]
    for _ in range(4):
        workers.start()
    ids = submit(workers.url, payloads)
    jobs = wait_until(lambda: all_ended(workers.url, ids), "every job to end", timeout=120)
    assert {j.state for j in jobs} == {JobState.COMPLETED}
    seen = [int(p.read_text()) for p in tmp_path.glob("seen-*")]
    assert len(seen) == len(ids)
    assert max(seen) <= keys_app.CAP
    assert max(seen) == keys_app.CAP  # the workers did overlap jobs of one account


def test_a_sigkilled_worker_frees_its_key_when_the_lease_is_reclaimed(
    workers: Workers, tmp_path: Path
) -> None:
    first = workers.start()
    hung = submit(workers.url, [{"dir": str(tmp_path), "acct": "k", "hang": True}] * 2)
    wait_until(lambda: len(list(tmp_path.glob("seen-*-1"))) == 2, "both jobs to start")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=WAIT)
    behind = submit(workers.url, [{"dir": str(tmp_path), "acct": "k", "hold": 0}])
    workers.start()
    jobs = wait_until(lambda: all_ended(workers.url, hung + behind), "every job to end")
    assert {j.state for j in jobs} == {JobState.COMPLETED}

    async def reclaimed_at(store: Store) -> float:
        ends = [a.finished_at for i in hung for a in await store.attempts(i)]
        return min(e for e in ends if e is not None)

    freed = in_store(workers.url, reclaimed_at)
    late = jobs[-1]
    # The key stayed at its cap while the dead worker's leases were live: the job behind them
    # started only once they were reclaimed, and then it did run.
    assert late.started_at is not None and late.started_at >= freed
    assert [j.reclaims for j in jobs[:2]] == [1, 1]
