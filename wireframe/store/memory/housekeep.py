"""Housekeeping (due jobs, ttl expiry, expired leases), aging and the next due time.

The steps of `wireframe.store.sql.claim` that come before a claim, over the table's time heaps.
"""

from __future__ import annotations

import heapq

from wireframe.store.memory.cascade import settle
from wireframe.store.memory.heaps import due_valid, expiry_valid, lease_valid, pop_due
from wireframe.store.memory.rows import (
    CANCELLED,
    EXPIRED,
    FAILED,
    PAUSED,
    PENDING,
    RUNNING,
    SCHEDULED,
    SUSPENDED,
    Ended,
    Job,
)
from wireframe.store.memory.table import Table
from wireframe.store.records import Transition
from wireframe.store.rules import reclaim_reason


def pending(tb: Table) -> bool:
    """True if `housekeep` may change something now (a due job, a ttl or a lease ran out)."""
    now = tb.now
    return any(heap and heap[0][0] <= now for heap in (tb.due, tb.expiry, tb.leases))


def housekeep(tb: Table) -> bool:
    """Wake due jobs, expire stale ones and take back expired leases.

    Returns whether work may have become claimable.
    """
    for job in pop_due(tb.due, tb.jobs, tb.now, due_valid):
        if job.state is SCHEDULED or job.state is SUSPENDED:  # a duplicate entry met it already
            job.ready_at = job.run_at
            if job.wait_for is not None:
                tb.set_wait_for(job, None)
            tb.move(job, PENDING)
            tb.wakes = True
    ended = _expire(tb)
    ended.extend(reclaim_expired_leases(tb))
    if ended:
        settle(tb, ended)
    return tb.wakes


def _expire(tb: Table) -> list[Ended]:
    """End unstarted jobs whose ttl ran out."""
    now = tb.now
    ended: list[Ended] = []
    stale: dict[int, Job] = {}
    for job in pop_due(tb.expiry, tb.jobs, now, expiry_valid):
        if job.state is not PENDING and job.state is not SCHEDULED:
            continue  # blocked: indexed again when unblocked; paused: when resumed
        stale[job.id] = job  # once, though it may have two entries
    for job_id in sorted(stale):  # in id order, as SQLite ends them
        job = stale[job_id]
        job.finished_at = now
        job.error = "not started before its ttl ran out"
        job.reason = "ttl"
        tb.move(job, EXPIRED)
        ended.append(Ended(job_id, EXPIRED, job.parent_id, job.active_children, "ttl"))
        tb.transitions.append(Transition(job_id, job.type, EXPIRED))
    return ended


def reclaim_expired_leases(tb: Table) -> list[Ended]:
    """Take back running jobs whose worker stopped renewing the lease (see the SQL engine's
    `reclaim_expired_leases`): a lost worker spends the job's reclaims, not its attempts."""
    now = tb.now
    ended: list[Ended] = []
    for job in pop_due(tb.leases, tb.jobs, now, lease_valid):
        if job.state is not RUNNING:
            continue
        lost = job.reclaims + 1
        reason = reclaim_reason(job.worker_id, lost, job.max_reclaims)
        job.close_attempt(now, "lease_expired", reason)
        job.reclaims = lost
        job.worker_id = None
        job.lease_expires_at = None
        job.reason = reason
        if job.child_failed or job.cancel_requested or lost > job.max_reclaims:
            failed = job.child_failed or not job.cancel_requested
            state = FAILED if failed else CANCELLED
            if not job.child_failed and failed:
                job.error = reason
            job.finished_at = now
            tb.move(job, state)
            error = job.error or reason
            tb.transitions.append(
                Transition(job.id, job.type, state, error=error, attempt=job.attempt)
            )
            ended.append(
                Ended(
                    job.id, state, job.parent_id, job.active_children, job.error, blocked_on=False
                )
            )
        elif job.pause_requested:
            job.paused_from = PENDING
            job.pause_requested = False
            job.new_attempt = 1
            tb.move(job, PAUSED)
        else:
            tb.wakes = True
            job.new_attempt = 1
            job.ready_at = now
            tb.move(job, PENDING)
    return ended


def age(tb: Table, older_than: float, step: int, cap: int) -> int:
    """Raise by `step` (up to `cap`) the priority of jobs pending longer than `older_than`
    since they became ready and since their last raise (`aged_at`; `ready_at` stays put)."""
    now = tb.now
    limit = now - older_than
    old = [
        job
        for job in tb.active[PENDING].values()
        if job.ready_at <= limit
        and (job.aged_at is None or job.aged_at <= limit)
        and job.priority < cap
    ]
    for job in old:
        job.aged_at = now
        job.lane.reprioritize(job, min(cap, job.priority + step))
    return len(old)


def next_due_at(tb: Table) -> float | None:
    """The earliest time a scheduled or suspended job becomes due, or None."""
    due = tb.due
    jobs = tb.jobs
    while due:
        at, job_id = due[0]
        if due_valid(jobs.get(job_id), at):
            return float(at)
        heapq.heappop(due)
    return None
