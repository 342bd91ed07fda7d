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

from wireframe.scheduler import Domain, JobContext, Scheduler
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
    # The first claim is the claim loop's; after that the flusher claims with each write.
    # (Racing, the two made about 72 claims and 77 writes of their own for these jobs.)
    assert calls["claim"] <= 3, calls
    assert calls["finish"] <= N // BATCH // 10, calls
    assert sum(calls.values()) <= N // BATCH * 1.4, calls
    # Asking when delayed work is due is for a claim that found nothing, not for slots that
    # were too few to claim for.
    assert calls["next_due_at"] <= 2, calls
