"""Fenced writes of running jobs: heartbeats, completions, failures and releases.

The memory twin of `wireframe.store.sql.finish`, in the same order: plain completions first
(the first Complete without finalize of each held, childless job), then every other outcome in
turn, the stored results of general completions last, then the cascade.
"""

from __future__ import annotations

from collections.abc import Sequence

from wireframe.store.memory.cascade import settle
from wireframe.store.memory.release import check_wait_for, release
from wireframe.store.memory.rows import (
    CANCELLED,
    COMPLETED,
    FAILED,
    PENDING,
    RUNNING,
    SCHEDULED,
    WAITING,
    Ended,
    Job,
)
from wireframe.store.memory.table import Table
from wireframe.store.records import (
    Beat,
    Complete,
    Fail,
    JobState,
    LeaseStatus,
    Outcome,
    Transition,
)


def heartbeat(tb: Table, beats: Sequence[Beat], lease_ttl: float) -> dict[int, LeaseStatus]:
    """Extend the leases still held; report lost ones and requests to cancel or pause."""
    status: dict[int, LeaseStatus] = {}
    jobs = tb.jobs
    until = tb.now + lease_ttl
    for beat in sorted(beats, key=lambda b: b.lease.job_id):
        job_id = beat.lease.job_id
        job = jobs.get(job_id)
        if job is None or job.claim_seq != beat.lease.claim_seq or job.state is not RUNNING:
            status[job_id] = LeaseStatus.LOST
            continue
        tb.extend_lease(job, until)
        if beat.progress is not None:
            job.progress = beat.progress
        if beat.message is not None:
            job.progress_message = beat.message
        if job.cancel_requested or job.child_failed:
            status[job_id] = LeaseStatus.CANCEL_REQUESTED
        elif job.pause_requested:
            status[job_id] = LeaseStatus.PAUSE_REQUESTED
        else:
            status[job_id] = LeaseStatus.OK
    return status


def _ended(job: Job, state: JobState, kids: int, error: str | None, dependents: bool) -> Ended:
    """A held job that just ended (it ran, so it holds no dependency edges)."""
    return Ended(job.id, state, job.parent_id, kids, error, blocked_on=False, dependents=dependents)


def finish(tb: Table, outcomes: Sequence[Outcome]) -> list[bool]:
    """Apply each outcome if its writer still holds the lease; return which were applied."""
    jobs = tb.jobs
    check_wait_for(tb, outcomes)
    plain = _complete_plain(tb, outcomes)
    held: dict[int, Job] = {}
    for o in outcomes:
        job_id = o.lease.job_id
        if job_id not in plain and job_id not in held:
            job = jobs.get(job_id)
            if job is not None and job.state is RUNNING:
                held[job_id] = job
    now = tb.now
    applied: list[bool] = []
    ended: list[Ended] = []
    completes: list[tuple[Job, Complete, JobState]] = []
    for outcome in outcomes:
        job_id = outcome.lease.job_id
        done = plain.pop(job_id, None)
        if done is not None:
            applied.append(True)
            dependents = job_id in tb.dependents
            if dependents or done.parent_id is not None:  # else there is nothing to settle
                ended.append(
                    Ended(
                        job_id,
                        COMPLETED,
                        done.parent_id,
                        0,
                        None,
                        blocked_on=False,
                        dependents=dependents,
                    )
                )
            continue
        job = held.get(job_id)
        if job is None or job.claim_seq != outcome.lease.claim_seq:
            applied.append(False)
            continue
        del held[job_id]
        applied.append(True)
        dependents = job_id in tb.dependents
        kids = job.active_children
        attempt = job.attempt
        if job.child_failed:
            err = job.error
            job.close_attempt(now, "failed", err)
            _end(tb, job, FAILED, err, None)
            ended.append(_ended(job, FAILED, kids, err, dependents))
            _moved(tb, job, FAILED, err)
        elif isinstance(outcome, Complete):
            job.close_attempt(now, "completed", None)
            state = _completed_state(job, outcome)
            completes.append((job, outcome, state))
            if state is COMPLETED:
                ended.append(_ended(job, COMPLETED, kids, None, dependents))
            _moved(tb, job, state)
        elif isinstance(outcome, Fail):
            job.close_attempt(now, outcome.outcome, outcome.error)
            if (
                outcome.retry_at is not None
                and not job.cancel_requested
                and attempt - job.reclaims < job.max_attempts  # a lost worker spends none
            ):
                tb.wakes = True
                job.run_at = outcome.retry_at
                job.ready_at = max(now, outcome.retry_at)
                job.new_attempt = 1
                job.error = outcome.error
                job.traceback = outcome.traceback
                job.reason = f"retry after attempt {attempt}"
                job.worker_id = None
                job.lease_expires_at = None
                tb.move(job, SCHEDULED if outcome.retry_at > now else PENDING)
                _moved(tb, job, job.state, outcome.error)
            else:
                state = CANCELLED if job.cancel_requested else FAILED
                _end(tb, job, state, outcome.error, outcome.traceback)
                ended.append(_ended(job, state, kids, outcome.error, dependents))
                _moved(tb, job, state, outcome.error)
        else:
            job.close_attempt(now, outcome.reason, None)
            cancelled = release(tb, job, outcome)
            if cancelled:
                ended.append(_ended(job, CANCELLED, kids, job.error, dependents))
            _moved(tb, job, job.state, outcome.reason if cancelled else None)
    for job, outcome, state in completes:
        _complete(tb, job, outcome, state)
    if ended:
        settle(tb, ended)
    return applied


def _moved(tb: Table, job: Job, state: JobState, error: str | None = None) -> None:
    """Report where `finish` put the job of an outcome it applied (an `own` Transition); a
    completion's state is given before `_complete` moves the job there."""
    tb.transitions.append(
        Transition(
            job.id,
            job.type,
            state,
            error=error,
            attempt=job.attempt,
            children=job.active_children if state is WAITING else 0,
            own=True,
        )
    )


def _complete_plain(tb: Table, outcomes: Sequence[Outcome]) -> dict[int, Job]:
    """Complete the jobs that end outright (held, childless, no failed child, no finalize).

    Returns them by id, attempts closed. The rest take the general path.
    """
    first: dict[int, Complete] = {}
    for o in outcomes:
        if isinstance(o, Complete) and not o.needs_finalize and o.lease.job_id not in first:
            first[o.lease.job_id] = o
    if not first:
        return {}
    jobs = tb.jobs
    now = tb.now
    done: dict[int, Job] = {}
    for job_id in sorted(first):
        o = first[job_id]
        job = jobs.get(job_id)
        if (
            job is None
            or job.state is not RUNNING
            or job.claim_seq != o.lease.claim_seq
            or job.active_children
            or job.child_failed
        ):
            continue
        job.needs_finalize = False
        job.result = o.result
        job.finished_at = now
        job.ready_at = now
        job.progress = 1.0
        job.reason = None
        job.worker_id = None
        job.lease_expires_at = None
        tb.move(job, COMPLETED)
        job.close_attempt(now, "completed", None)
        done[job_id] = job
    return done


def _end(tb: Table, job: Job, state: JobState, error: str | None, traceback: str | None) -> None:
    """Move a running job to a terminal state (a failure clears why it waited before: its error
    says why it ended; a cancel keeps the cancel's reason)."""
    job.finished_at = tb.now
    job.error = error
    if state is FAILED:
        job.reason = None
    if traceback is not None:
        job.traceback = traceback
    job.worker_id = None
    job.lease_expires_at = None
    tb.move(job, state)


def _completed_state(job: Job, outcome: Complete) -> JobState:
    """Where a Complete takes a held job: waiting for children, its finalize, or completed."""
    if job.phase == "execute" and job.active_children > 0:
        return WAITING
    if job.phase == "execute" and outcome.needs_finalize:
        return PENDING
    return COMPLETED


def _complete(tb: Table, job: Job, outcome: Complete, state: JobState) -> None:
    """Store a result, then end the job, wait for its children or queue its finalize."""
    now = tb.now
    if state is PENDING:
        job.phase = "finalize"
    job.needs_finalize = outcome.needs_finalize
    job.result = outcome.result
    job.finished_at = now if state is COMPLETED else None
    job.ready_at = now
    if state is COMPLETED:
        job.progress = 1.0
        job.reason = None
    job.worker_id = None
    job.lease_expires_at = None
    tb.move(job, state)
