"""Claiming work: leased claims, best priority first and FIFO within a priority.

The memory twin of `wireframe.store.sql.claim` (housekeeping is in `housekeep.py`; the choice
between a plain and a rate-limited claim is in `claiming.py`, claims under rate limits in
`rates.py`, which builds on the candidates and leases here). Candidates
come from the lanes (`lanes.py`) a request may take, merged best first; a pending job the
request may not take (its type excluded, its ttl run out, its key at its cap: `keys.py`) keeps
its place.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence

from wireframe.store.memory.flows import unpaused
from wireframe.store.memory.keybook import Admission
from wireframe.store.memory.keys import uncapped_top
from wireframe.store.memory.lanes import ID_MASK, Lane, key
from wireframe.store.memory.rows import PENDING, Job
from wireframe.store.memory.table import Table
from wireframe.store.records import ClaimRequest, JobRecord

Chooser = Callable[[Sequence[JobRecord]], Sequence[int]]


def claim_plain(
    tb: Table, req: ClaimRequest, chooser: Chooser | None, lanes: list[Lane]
) -> list[JobRecord]:
    """Lease up to `req.limit` pending jobs from `lanes` (a request without rate limits), best
    priority first, then by turns of their concurrency keys (FIFO without keys); never past a
    key's cap."""
    if not lanes:
        return []
    if chooser is None:
        return [lease(tb, job, req) for job in candidates(tb, lanes, req, req.limit)]
    found = candidates(tb, lanes, req, max(req.scan, req.limit))
    if not found:
        return []
    try:
        allowed = {job.id: job for job in found}
        picked = dict.fromkeys(i for i in chooser([job.record() for job in found]) if i in allowed)
    except BaseException:
        put_back(found)
        raise
    chosen = list(picked)[: req.limit]
    leased = set(chosen)
    put_back([job for job in found if job.id not in leased])
    return [lease(tb, allowed[job_id], req) for job_id in chosen]


def lanes_for(tb: Table, req: ClaimRequest) -> list[Lane]:
    """The lanes whose jobs a request may take (by domain and tags)."""
    found: list[Lane] = []
    excluded = req.exclude_domains
    for domain in dict.fromkeys(req.domains):
        if domain in excluded:
            continue
        for lane in tb.domain_lanes.get(domain, ()):
            if lane.admits(req.tags):
                found.append(lane)
    return found


def candidates(
    tb: Table, lanes: list[Lane], req: ClaimRequest, want: int, admission: Admission | None = None
) -> list[Job]:
    """Take off the lanes up to `want` pending jobs the request may take, best first.

    The entries of the jobs returned are popped: the caller leases each one or puts it back.
    `admission` counts the keyed jobs taken so far (one per claim, if it takes several calls).
    """
    if admission is None:
        admission = Admission(tb.flow)
    if len(lanes) == 1:
        return _from_one(tb, lanes[0], req, want, admission)
    jobs = tb.jobs
    out: list[Job] = []
    skipped: list[tuple[Lane, int]] = []
    while len(out) < want:
        best: Lane | None = None
        for lane in lanes:
            heap = lane.heap
            while heap:
                k = heap[0]
                job = jobs.get(k & ID_MASK)
                if job is not None and job.pkey == k:
                    break
                heapq.heappop(heap)
            if heap and (best is None or heap[0] < best.heap[0]):
                best = lane
        if best is None:
            break
        k = heapq.heappop(best.heap)
        job = jobs[k & ID_MASK]
        if _excluded(tb, job, req) or not admission.admits(job):
            skipped.append((best, k))
            continue
        job.pkey = None  # taken off: a duplicate entry of it is stale until it is put back
        out.append(job)
    for lane, k in skipped:
        heapq.heappush(lane.heap, k)
    return out


def _from_one(
    tb: Table, lane: Lane, req: ClaimRequest, want: int, admission: Admission
) -> list[Job]:
    """`candidates` from a single lane (the common case)."""
    jobs = tb.jobs
    heap = lane.heap
    pop = heapq.heappop
    out: list[Job] = []
    skipped: list[int] = []
    now = tb.now
    excluded = req.exclude_types
    while heap and len(out) < want:
        k = pop(heap)
        job = jobs.get(k & ID_MASK)
        if job is None or job.pkey != k:
            continue  # stale
        if (
            (job.expires_at is not None and job.expires_at <= now)
            or (excluded and job.type in excluded)
            or (job.key_cap is not None and not admission.admits(job))
        ):
            if k not in skipped:
                skipped.append(k)
            continue
        job.pkey = None  # taken off: a duplicate entry of it is stale until it is put back
        out.append(job)
    for k in skipped:
        heapq.heappush(heap, k)
    return out


def _excluded(tb: Table, job: Job, req: ClaimRequest) -> bool:
    """True for a pending job this request may not take: its type excluded, its ttl run out."""
    return (job.expires_at is not None and job.expires_at <= tb.now) or (
        bool(req.exclude_types) and job.type in req.exclude_types
    )


def lease(tb: Table, job: Job, req: ClaimRequest) -> JobRecord:
    """Lease one candidate (taken off its lane) to the request's worker; open its attempt."""
    now = tb.now
    job.worker_id = req.worker_id
    job.lease_expires_at = now + req.lease_ttl
    job.claim_seq += 1
    job.attempt += job.new_attempt
    job.new_attempt = 0
    if job.started_at is None:
        job.started_at = now
        job.expires_at = None  # a ttl bounds only the wait before the first start
    job.cancel_requested = False
    job.pause_requested = False
    if job.wait_for is not None:
        tb.set_wait_for(job, None)
    tb.start(job)
    # A preempted or released attempt keeps its number: claiming it again reopens its row.
    job.open_attempt(req.worker_id, now)
    return job.record()


def put_back(jobs: Sequence[Job]) -> None:
    """Return candidates that were not leased to their lanes."""
    for job in jobs:
        k = job.pkey = key(job.priority, job.fair, job.id)
        heapq.heappush(job.lane.heap, k)


def top_pending_priority(tb: Table, domains: Sequence[str], tags: Sequence[str]) -> int | None:
    """The highest base priority among pending jobs a worker with these domains and tags takes
    (a job whose key is at its cap could not start: preempting for it would gain nothing)."""
    if not domains:
        return None
    req = unpaused(tb, ClaimRequest("", 1, 1.0, tuple(domains), tuple(tags)))
    lanes = lanes_for(tb, req)
    if req.exclude_types:  # a paused type: look at the jobs (the lanes count every type)
        found = [
            job.base_priority
            for lane in lanes
            for job in tb.active[PENDING].values()
            if job.lane is lane and job.type not in req.exclude_types
        ]
        return max(found) if found else None
    if tb.flow.running:  # some key may be at its cap: look at the jobs themselves
        return uncapped_top(tb, {id(lane) for lane in lanes})
    tops = [top for lane in lanes if (top := lane.top_base()) is not None]
    return max(tops) if tops else None
