"""Operator control of jobs and their trees: cancel, pause, resume, retry, prune.

The memory twin of `wireframe.store.sql.control`; every refusal comes before any change.
"""

from __future__ import annotations

from collections.abc import Sequence

from wireframe.store.errors import DuplicateKeyError, InvalidTransitionError, UnknownJobError
from wireframe.store.memory.cascade import cancel_tree, descendants, settle
from wireframe.store.memory.rows import (
    BLOCKED,
    COMPLETED,
    PAUSED,
    PENDING,
    RUNNING,
    SCHEDULED,
    TERMINAL,
    Job,
)
from wireframe.store.memory.table import Table
from wireframe.store.records import JobState, Transition
from wireframe.store.rules import retry_waits


def _job(tb: Table, job_id: int, where: str) -> Job:
    job = tb.jobs.get(job_id)
    if job is None:
        raise UnknownJobError(job_id, where)
    return job


def cancel(tb: Table, job_id: int, reason: str) -> JobState:
    """Cancel a job and its descendants; return the job's state afterwards."""
    job = _job(tb, job_id, "cancel")
    if job.state in TERMINAL:
        return job.state
    settle(tb, cancel_tree(tb, job_id, reason))
    return _job(tb, job_id, "cancel").state


def _tree(tb: Table, job_id: int) -> list[Job]:
    jobs = tb.jobs
    return [job for i in descendants(tb, job_id) if (job := jobs.get(i)) is not None]


def pause(tb: Table, job_id: int) -> int:
    """Pause a job and its active descendants; running ones are asked to stop. Return how many."""
    job = _job(tb, job_id, "pause")
    if job.state in TERMINAL:
        raise InvalidTransitionError(f"pause: job {job_id} has already ended ({job.state})")
    tree = _tree(tb, job_id)
    count = 0
    for row in tree:
        if row.state is RUNNING:
            row.pause_requested = True
            count += 1
    for row in tree:
        if row.state not in TERMINAL and row.state is not RUNNING and row.state is not PAUSED:
            row.paused_from = row.state
            row.reason = "paused"
            tb.move(row, PAUSED)
            count += 1
    return count


def resume(tb: Table, job_id: int) -> int:
    """Resume a paused job and its paused descendants. Return how many moved."""
    job = _job(tb, job_id, "resume")
    if job.state in TERMINAL:
        raise InvalidTransitionError(f"resume: job {job_id} has already ended ({job.state})")
    now = tb.now
    tree = _tree(tb, job_id)
    for row in tree:
        if row.state is RUNNING:
            row.pause_requested = False
    moved = 0
    for row in tree:
        if row.state is not PAUSED:
            continue
        came_from = row.paused_from
        if came_from is SCHEDULED and row.run_at <= now:
            state = PENDING
        else:
            state = came_from if came_from is not None else PENDING
        row.paused_from = None
        row.ready_at = now
        row.reason = "resumed"
        tb.move(row, state)
        if row.expires_at is not None:
            tb.push_expiry(row)  # a ttl that ran out while paused applies again
        moved += 1
    if moved:
        tb.wakes = True
    return moved


def retry(tb: Table, job_id: int) -> None:
    """Run an ended, unsuccessful job again with fresh retry and reclaim budgets.

    See `wireframe.store.sql.control.retry`: a job that ended before its dependencies were all
    met waits again (blocked) for those still active, and is refused while one of them ended
    without completing.
    """
    job = _job(tb, job_id, "retry")
    state = job.state
    if state not in TERMINAL or state is COMPLETED:
        raise InvalidTransitionError(
            f"retry: job {job_id} is {state}; only failed, cancelled, expired or "
            f"dependency_failed jobs can be retried"
        )
    if job.key is not None:
        holder = tb.keys.get((job.type, job.key))
        if holder is not None:
            raise DuplicateKeyError(
                f"retry: job {job_id}'s key {job.key!r} is held by active job {holder}"
            )
    waiting = still_waiting(tb, job)
    now = tb.now
    jobs = tb.jobs
    job.max_attempts = job.attempt + job.retry_budget
    job.reclaims = 0
    job.new_attempt = 1
    job.finished_at = None
    job.run_at = now
    job.ready_at = now
    job.expires_at = None
    job.cancel_requested = False
    job.pause_requested = False
    job.child_failed = False
    job.phase = "execute"
    job.needs_finalize = False
    job.reason = "retried by operator"
    job.deps = None
    job.active_children = sum(
        1
        for c in tb.children.get(job_id, ())
        if (child := jobs.get(c)) is not None and child.state not in TERMINAL
    )
    tb.move(job, BLOCKED if waiting else PENDING)
    if waiting:
        for dep in waiting:
            tb.add_edge(job, dep)
        job.deps = tuple(waiting)
        tb.transitions.append(Transition(job_id, job.type, BLOCKED, tuple(waiting)))
    else:
        tb.wakes = True
    if job.parent_id is not None:
        parent = jobs.get(job.parent_id)
        if parent is not None and parent.state not in TERMINAL:
            parent.active_children += 1


def still_waiting(tb: Table, job: Job) -> list[int]:
    """The remembered dependencies of a job to retry that are still active.

    Raises InvalidTransitionError naming each one that ended otherwise, or that was pruned.
    """
    deps = list(dict.fromkeys(int(d) for d in job.deps)) if job.deps else []
    if not deps:
        return []
    jobs = tb.jobs
    states = {dep: row.state for dep in deps if (row := jobs.get(dep)) is not None}
    return retry_waits(job.id, deps, job.on_dep_failure, states)


def prune(
    tb: Table,
    finished_before: float,
    states: Sequence[JobState] = (),
    domain: str | None = None,
    dry_run: bool = False,
) -> int:
    """Delete ended jobs (with their attempts and checkpoints) that finished before a time, of
    these states and this domain if given; with `dry_run`, only count them."""
    jobs = tb.jobs
    doomed = [
        job
        for job in jobs.values()
        if job.finished_at is not None
        and job.finished_at < finished_before
        and job.state in TERMINAL
        and (not states or job.state in states)
        and (domain is None or job.domain == domain)
    ]
    if dry_run:
        return len(doomed)
    parents: set[int] = set()
    for job in doomed:
        del jobs[job.id]
        tb.checkpoints.pop(job.id, None)
        tally = job.tally
        n = tally[job.state] - 1
        if n:
            tally[job.state] = n
        else:
            del tally[job.state]
        if job.parent_id is not None:
            parents.add(job.parent_id)
        if job.waiting:
            tb.drop_edges(job)
    for parent_id in parents:
        kept = [c for c in tb.children.get(parent_id, ()) if c in jobs]
        if kept:
            tb.children[parent_id] = kept
        else:
            tb.children.pop(parent_id, None)
    return len(doomed)
