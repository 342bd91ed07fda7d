"""Small helpers shared by the store conformance tests."""

from __future__ import annotations

from typing import Any

from wireframe.store import (
    ClaimRequest,
    Complete,
    Fail,
    JobRecord,
    JobState,
    Lease,
    NewJob,
    Release,
    Store,
    Submitted,
)


class FakeClock:
    """A clock the tests move by hand: no sleeping to test delays, leases, ttl or aging."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        """Move time forward and return the new time."""
        self.now += seconds
        return self.now


DOMAIN = "d"
TYPE = "d::t"
TTL = 30.0


def job(type: str = TYPE, domain: str | None = None, **kw: Any) -> NewJob:
    """A NewJob with sensible defaults."""
    if domain is None:
        domain = type.split("::", 1)[0]
    kw.setdefault("payload", "{}")
    return NewJob(type=type, domain=domain, **kw)


async def submit(store: Store, **kw: Any) -> int:
    """Submit one job and return its id (it must not be a duplicate)."""
    [result] = await store.submit([job(**kw)])
    assert isinstance(result, Submitted), result
    return result.id


async def submit_many(store: Store, n: int, **kw: Any) -> list[int]:
    """Submit n identical jobs in one call; return their ids."""
    results = await store.submit([job(**kw) for _ in range(n)])
    assert all(isinstance(r, Submitted) for r in results)
    return [r.id for r in results]


def request(
    limit: int = 100, domains: tuple[str, ...] = (DOMAIN,), worker: str = "w1", **kw: Any
) -> ClaimRequest:
    """A ClaimRequest with sensible defaults."""
    kw.setdefault("lease_ttl", TTL)
    return ClaimRequest(worker_id=worker, limit=limit, domains=domains, **kw)


async def claim(store: Store, limit: int = 100, **kw: Any) -> list[JobRecord]:
    """Claim up to `limit` jobs."""
    return await store.claim(request(limit, **kw))


async def claim_ids(store: Store, limit: int = 100, **kw: Any) -> list[int]:
    """Claim up to `limit` jobs and return their ids, in claim order."""
    return [j.id for j in await claim(store, limit, **kw)]


async def claim_one(store: Store, job_id: int, **kw: Any) -> JobRecord:
    """Claim and return exactly the job `job_id` (it must be the only claimable one)."""
    jobs = await claim(store, **kw)
    assert [j.id for j in jobs] == [job_id], [(j.id, j.state) for j in jobs]
    return jobs[0]


async def state(store: Store, job_id: int) -> JobState:
    """The job's current state."""
    record = await store.get(job_id)
    assert record is not None, job_id
    return record.state


async def states(store: Store, *ids: int) -> list[JobState]:
    """The states of several jobs, in order."""
    return [await state(store, i) for i in ids]


async def complete(store: Store, lease: Lease, result: str | None = '"ok"', **kw: Any) -> bool:
    """Finish one lease with Complete; return whether it was applied."""
    [ok] = await store.finish([Complete(lease, result, **kw)])
    return ok


async def fail(store: Store, lease: Lease, error: str = "boom", **kw: Any) -> bool:
    """Finish one lease with Fail; return whether it was applied."""
    [ok] = await store.finish([Fail(lease, error, **kw)])
    return ok


async def release(store: Store, lease: Lease, to: Any = "pending", **kw: Any) -> bool:
    """Finish one lease with Release; return whether it was applied."""
    kw.setdefault("reason", "test")
    [ok] = await store.finish([Release(lease, to, **kw)])
    return ok


async def run(store: Store, job_id: int, **kw: Any) -> JobRecord:
    """Claim exactly `job_id` and complete it; return the claimed record."""
    claimed = await claim_one(store, job_id, **kw)
    assert await complete(store, claimed.lease)
    return claimed
