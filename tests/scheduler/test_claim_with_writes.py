"""A busy worker claims with its writes: one trip to the store for both, not one each.

Every transaction costs a round trip or more (and, on PostgreSQL, a commit and a thread hop),
so a worker that keeps its slots full must not let its claim loop race the flusher: while
outcomes are queued or being written, the flusher claims for the freed slots in the same
transaction (`Store.finish_and_claim`), and the claim loop waits for it.
"""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import anyio
import pytest

from wireframe.scheduler import Domain, JobContext, JobState, Scheduler
from wireframe.store import Store
from wireframe.store.memory import MemoryStore
from wireframe.store.sqlite import SqliteStore
from wireframe.testing import running

pytestmark = pytest.mark.anyio

N = 2000
BATCH = 16


def counting(cls: type[Any], calls: collections.Counter[str]) -> type[Any]:
    """A subclass of the store class `cls` that counts its claim and finish calls."""

    class Counting(cls):  # type: ignore[misc, valid-type]
        async def claim(self, *args: Any, **kwargs: Any) -> Any:
            calls["claim"] += 1
            return await super().claim(*args, **kwargs)

        async def finish(self, *args: Any, **kwargs: Any) -> Any:
            calls["finish"] += 1
            return await super().finish(*args, **kwargs)

        async def finish_and_claim(self, *args: Any, **kwargs: Any) -> Any:
            calls["finish_and_claim"] += 1
            return await super().finish_and_claim(*args, **kwargs)

        async def next_due_at(self, *args: Any, **kwargs: Any) -> Any:
            calls["next_due_at"] += 1
            return await super().next_due_at(*args, **kwargs)

    return Counting


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
async def test_a_saturated_worker_claims_in_the_transactions_that_write_outcomes(
    kind: str, tmp_path: Path
) -> None:
    domain = Domain("d")
    done = anyio.Event()
    ran = 0

    @domain.job
    async def noop(job: dict, ctx: JobContext) -> None:
        nonlocal ran
        ran += 1
        if ran == N:
            done.set()

    calls: collections.Counter[str] = collections.Counter()
    store: Store = (
        counting(MemoryStore, calls)()
        if kind == "memory"
        else counting(SqliteStore, calls)(str(tmp_path / "jobs.db"))
    )
    client = Scheduler(store, domains=[domain], worker=False)
    await client.open()
    await client.submit_many([{}] * N, type="d::noop")
    scheduler = Scheduler(store, domains=[domain], max_concurrency=BATCH, batch_size=BATCH)
    async with running(scheduler):
        with anyio.fail_after(30):
            await done.wait()
    assert ran == N
    # The first claim is the claim loop's; after that the flusher claims with each write, and
    # each write carries a whole claim's jobs: N / BATCH transactions and a few more. (Racing
    # the claim loop, the flusher made 84 of them, besides 72 claims and 77 writes alone;
    # writing as soon as the first jobs of a claim were done, 147 and 8 writes alone.)
    assert calls["claim"] <= 3, calls
    assert calls["finish"] <= 2, calls
    assert sum(calls.values()) <= N // BATCH + 5, calls
    # Asking when delayed work is due is for a claim that found nothing, not for slots that
    # were too few to claim for.
    assert calls["next_due_at"] <= 2, calls


async def test_an_outcome_is_written_while_other_runners_are_busy_with_slow_jobs() -> None:
    domain = Domain("d")
    release = anyio.Event()
    slow_started = anyio.Event()

    @domain.job
    async def slow(job: dict, ctx: JobContext) -> None:
        slow_started.set()
        await release.wait()

    @domain.job
    async def quick(job: dict, ctx: JobContext) -> int:
        return 7

    scheduler = Scheduler("memory://", domains=[domain], max_concurrency=4, batch_size=4)
    async with running(scheduler) as s:
        slow_jobs = [(await s.submit({}, type="d::slow")).id for _ in range(3)]
        with anyio.fail_after(10):
            await slow_started.wait()
            quick_job = (await s.submit({}, type="d::quick")).id
            # Written (and so readable) while three runners are still stuck.
            assert await s.result(quick_job) == 7
        for job_id in slow_jobs:
            record = await s.get(job_id)
            assert record is not None and record.state is JobState.RUNNING
        release.set()
