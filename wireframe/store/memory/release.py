"""Giving a running job back (`Release`), and the check that comes before any outcome is applied.

Part of `finish`: see `wireframe.store.sql.finish._release`.
"""

from __future__ import annotations

from collections.abc import Sequence

from wireframe.store.memory.durable import already_happened, parse_wait_for
from wireframe.store.memory.rows import (
    CANCELLED,
    PAUSED,
    PENDING,
    RUNNING,
    SCHEDULED,
    SUSPENDED,
    Job,
)
from wireframe.store.memory.table import Table
from wireframe.store.records import Complete, JobState, Outcome, Release


def holds(job: Job | None, claim_seq: int) -> bool:
    """True if `job` is running under the claim numbered `claim_seq`."""
    return job is not None and job.state is RUNNING and job.claim_seq == claim_seq


def check_wait_for(tb: Table, outcomes: Sequence[Outcome]) -> None:
    """Refuse, before anything changes, a batch that would suspend a job on a bad wait_for."""
    if not any(
        isinstance(o, Release) and o.to == "suspended" and o.wait_for is not None for o in outcomes
    ):
        return
    jobs = tb.jobs
    plain: set[int] = set()
    firsts: set[int] = set()
    for o in outcomes:
        if isinstance(o, Complete) and not o.needs_finalize and o.lease.job_id not in firsts:
            firsts.add(o.lease.job_id)
            job = jobs.get(o.lease.job_id)
            if (
                holds(job, o.lease.claim_seq)
                and job is not None
                and not (job.active_children or job.child_failed)
            ):
                plain.add(o.lease.job_id)
    seen: set[int] = set()
    for o in outcomes:
        job_id = o.lease.job_id
        job = jobs.get(job_id)
        if job_id in plain or job_id in seen or job is None or not holds(job, o.lease.claim_seq):
            continue
        seen.add(job_id)
        if (
            isinstance(o, Release)
            and o.to == "suspended"
            and o.wait_for is not None
            and not job.child_failed
            and not job.cancel_requested
        ):
            parse_wait_for(o.wait_for)


def release(tb: Table, job: Job, outcome: Release) -> bool:
    """Give a running job back without spending an attempt; return True if it was cancelled."""
    now = tb.now
    if outcome.to == "cancelled" or job.cancel_requested:
        job.finished_at = now
        job.reason = outcome.reason
        job.worker_id = None
        job.lease_expires_at = None
        tb.move(job, CANCELLED)
        return True
    run_at = outcome.run_at if outcome.run_at is not None else now
    paused_from: JobState | None = None
    if outcome.to == "paused":
        state, paused_from = PAUSED, PENDING
    elif outcome.to == "suspended":
        if outcome.wait_for is not None and already_happened(tb, outcome.wait_for, job.id):
            state, run_at = PENDING, now
        else:
            state = SUSPENDED
    elif run_at > now:
        state = SCHEDULED
    else:
        state = PENDING
    tb.wakes = True
    job.paused_from = paused_from
    job.run_at = run_at
    job.ready_at = max(now, run_at)
    job.reason = outcome.reason
    job.pause_requested = False
    job.worker_id = None
    job.lease_expires_at = None
    tb.set_wait_for(job, outcome.wait_for if state is SUSPENDED else None)
    tb.move(job, state)
    return False
