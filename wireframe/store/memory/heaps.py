"""The time heaps of the table (`due`, `leases`, `expiry`): entries, validity and rebuilding.

An entry is (time, job id). It is not removed when its job moves on; it counts only while its
job is still in a state the heap indexes, at that very time.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from wireframe.store.memory.rows import RUNNING, SCHEDULED, SUSPENDED, TERMINAL, Job

TimeHeap = list[tuple[float, int]]


def rebuilt(
    heap: TimeHeap, jobs: dict[int, Job], valid: Callable[[Job | None, float], bool]
) -> TimeHeap:
    """The heap's valid entries (each once), as a new heap."""
    kept = list({entry for entry in heap if valid(jobs.get(entry[1]), entry[0])})
    heapq.heapify(kept)
    return kept


def pop_due(
    heap: TimeHeap, jobs: dict[int, Job], now: float, valid: Callable[[Job | None, float], bool]
) -> list[Job]:
    """Pop the heap's entries due by `now`; the jobs of the valid ones, in time order.

    A job with two valid entries (a duplicate push) comes twice.
    """
    found: list[Job] = []
    while heap and heap[0][0] <= now:
        at, job_id = heapq.heappop(heap)
        job = jobs.get(job_id)
        if valid(job, at):
            assert job is not None
            found.append(job)
    return found


def due_valid(job: Job | None, at: float) -> bool:
    """True if a `due` entry still indexes its job (scheduled or suspended until `at`)."""
    return (
        job is not None and (job.state is SCHEDULED or job.state is SUSPENDED) and job.run_at == at
    )


def lease_valid(job: Job | None, at: float) -> bool:
    """True if a `leases` entry still indexes its job (running, its lease ending at `at`)."""
    return job is not None and job.state is RUNNING and job.lease_expires_at == at


def expiry_valid(job: Job | None, at: float) -> bool:
    """True if an `expiry` entry's job may still expire at `at` (not ended, its ttl unchanged:
    a claim clears a ttl at the first start; a paused one may expire, once resumed)."""
    return job is not None and job.expires_at == at and job.state not in TERMINAL
