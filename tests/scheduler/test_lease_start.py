"""A handler never starts on a lease that may have run out: a job that waited in the worker's
queue until little of its lease was left is renewed first, and dropped if the lease was lost
(another worker has taken the job over)."""

from __future__ import annotations

import pytest

from wireframe import Domain, JobContext, Worker
from wireframe.store import ClaimRequest, Complete, MemoryStore, NewJob

pytestmark = pytest.mark.anyio


class Clock:
    """A clock moved by hand, shared by the store and the worker."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now


async def test_a_queued_job_is_renewed_before_it_starts_and_dropped_if_taken_over() -> None:
    clock = Clock()
    ran: list[int] = []
    d = Domain("d")

    @d.job
    async def work(job: dict[str, int], ctx: JobContext) -> None:
        ran.append(job["n"])

    store = MemoryStore(clock=clock)
    worker = Worker(store, [d], worker_id="w-1", claim_ttl=10.0, clock=clock)
    await worker.open()
    try:
        ids = [
            r.id
            for r in await store.submit(
                [NewJob("d::work", "d", f'{{"n": {n}}}', max_attempts=3) for n in (1, 2)]
            )
        ]
        request = ClaimRequest("w-1", 1, 10.0, ("d",))
        [first] = await store.claim(request)  # leased until now + 10
        clock.now += 5
        [second] = await store.claim(request)  # leased until now + 10 (5 s later)
        clock.now += 6  # the first lease has run out; the second has 4 s left
        [taken] = await store.claim(ClaimRequest("w-2", 1, 10.0, ("d",)))
        assert taken.id == first.id == ids[0]  # another worker reclaimed and took it

        executor = worker._executor
        # Both wait in this worker's queue with less than half a lease left on its clock.
        executor.start([first, second], clock.monotonic() - 1.0)
        executor.close()
        await executor.serve()

        assert ran == [2]  # the lost one never ran here
        written = [o for _, o in worker._completer.outcomes]
        assert [type(o) for o in written] == [Complete]
        assert written[0].lease == second.lease
        held = await store.get(second.id)
        assert held is not None and held.lease_expires_at == clock.now + 10.0  # renewed
    finally:
        await store.close()
