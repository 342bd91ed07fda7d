"""The pending index: per (domain, tags), a heap of pending jobs by (priority DESC, turn, id).

The turn is a keyed job's fair-share stamp (`wireframe.store.memory.keybook`; 0 without a
key). A lane sees a job only as a `Pending` (what `rows.Job` has), so it needs nothing of rows.
A heap entry is one int, `key(priority, turn, id)`, so entries compare as ints do. Entries are
deleted lazily: a job that leaves pending (or changes priority) forgets its key (`Job.pkey`),
and an entry counts only while its job is pending under that very key. A heap holding far more
entries than pending jobs is rebuilt, so its size stays proportional to the jobs it indexes.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from typing import Protocol

ID_BITS = 48
ID_MASK = (1 << ID_BITS) - 1
TURN_BITS = 64
PRIORITY_SHIFT = ID_BITS + TURN_BITS
SLACK = 64
"""Stale entries a heap may hold beyond as many as its live ones before it is rebuilt."""


class Pending(Protocol):
    """What a lane reads and writes of a pending job (a `rows.Job`)."""

    id: int
    priority: int
    """Its priority now (aged)."""
    base_priority: int
    """Its priority as submitted."""
    fair: int
    """Its turn (0 without a concurrency key)."""
    pkey: int | None
    """Its key in the lane's heap while pending."""


def key(priority: int, turn: int, job_id: int) -> int:
    """The heap key of a pending job: smaller for a higher priority, then for an earlier turn,
    then for a smaller id."""
    return (-priority << PRIORITY_SHIFT) | (turn << ID_BITS) | job_id


class Lane:
    """The pending jobs of one domain whose tags are exactly `tags`."""

    __slots__ = ("bases", "domain", "heap", "jobs", "live", "tags")

    def __init__(self, domain: str, tags: tuple[str, ...], jobs: Mapping[int, Pending]) -> None:
        self.jobs = jobs
        """Every job of the table, by id."""
        self.domain = domain
        self.tags = tags
        self.heap: list[int] = []
        self.live = 0
        """How many pending jobs the heap indexes."""
        self.bases: dict[int, int] = {}
        """How many pending jobs have each base priority."""

    def admits(self, tags: tuple[str, ...]) -> bool:
        """True if a worker with `tags` may take this lane's jobs (all of them in its tags)."""
        if not self.tags:
            return True
        return bool(tags) and all(t in tags for t in self.tags)

    def enter(self, job: Pending) -> None:
        """Index a job that just became pending."""
        k = (-job.priority << PRIORITY_SHIFT) | (job.fair << ID_BITS) | job.id
        job.pkey = k
        heapq.heappush(self.heap, k)
        self.live += 1
        bases = self.bases
        bases[job.base_priority] = bases.get(job.base_priority, 0) + 1
        if len(self.heap) > 2 * self.live + SLACK:
            self.compact()

    def leave(self, job: Pending) -> None:
        """Forget a job that stops being pending (its heap entry goes stale)."""
        job.pkey = None
        self.live -= 1
        if not self.live:
            self.heap.clear()  # every entry left is stale
        bases = self.bases
        n = bases[job.base_priority] - 1
        if n:
            bases[job.base_priority] = n
        else:
            del bases[job.base_priority]

    def reprioritize(self, job: Pending, priority: int) -> None:
        """Change the priority of a pending job (aging)."""
        job.priority = priority
        k = key(priority, job.fair, job.id)
        job.pkey = k
        heapq.heappush(self.heap, k)
        if len(self.heap) > 2 * self.live + SLACK:
            self.compact()

    def compact(self) -> None:
        """Rebuild the heap from its live entries."""
        jobs = self.jobs
        live = {k for k in self.heap if _valid(jobs.get(k & ID_MASK), k)}
        self.heap = list(live)
        heapq.heapify(self.heap)

    def top_base(self) -> int | None:
        """The highest base priority among its pending jobs."""
        return max(self.bases) if self.bases else None


def _valid(job: Pending | None, k: int) -> bool:
    return job is not None and job.pkey == k
