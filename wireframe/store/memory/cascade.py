"""What follows when jobs end: dependents unblock or fail, parents count children, trees cancel.

The memory twin of `wireframe.store.sql.cascade`, step for step.
"""

from __future__ import annotations

from collections.abc import Iterable

from wireframe.store.memory.rows import (
    BLOCKED,
    CANCELLED,
    COMPLETED,
    DEPENDENCY_FAILED,
    EXPIRED,
    FAILED,
    PAUSED,
    PENDING,
    RUNNING,
    SCHEDULED,
    SUSPENDED,
    TERMINAL,
    WAITING,
    Ended,
    Job,
)
from wireframe.store.memory.table import Table
from wireframe.store.records import Transition

FAILED_CHILD_STATES = frozenset({FAILED, EXPIRED, DEPENDENCY_FAILED})


def settle(tb: Table, ended: Iterable[Ended]) -> None:
    """Propagate the consequences of jobs that just became terminal, wave after wave."""
    jobs = tb.jobs
    wave = list(ended)
    while wave:
        following: list[Ended] = []
        for e in wave:
            if e.blocked_on:
                job = jobs.get(e.id)
                if job is not None and job.waiting:
                    tb.drop_edges(job)
        resolving = [e for e in wave if e.cascade and e.dependents]
        if resolving:
            following.extend(_resolve_dependents(tb, resolving))
        for e in wave:
            if e.active_children > 0:
                following.extend(
                    cancel_descendants(tb, e.id, f"parent job {e.id} ended ({e.state})")
                )
            if e.parent_id is not None:
                following.extend(_child_ended(tb, e))
        # Only a parent joins a job (`ctx.join` takes its own children), so only children wake.
        wake(tb, [f"job:{e.id}" for e in wave if e.parent_id is not None])
        wave = following


def _resolve_dependents(tb: Table, wave: list[Ended]) -> list[Ended]:
    """Unblock, fail or cancel the jobs that depend on the jobs in `wave`."""
    by_id = {e.id: e for e in wave}
    jobs = tb.jobs
    edges: list[tuple[int, int, str, Job]] = []
    for dep_id in sorted(by_id):
        for job_id in sorted(tb.dependents.get(dep_id, ())):
            job = jobs.get(job_id)
            if job is not None:
                edges.append((dep_id, job_id, job.state, job))
    edges.sort(key=lambda edge: edge[1])  # by dependent, as the SQL engine reads them
    out: list[Ended] = []
    decided: set[int] = set()
    now = tb.now
    for dep_id, job_id, state, job in edges:
        if job_id in decided or state in TERMINAL:
            continue
        dep = by_id[dep_id]
        policy = job.on_dep_failure
        if dep.state is COMPLETED or policy == "ignore":
            tb.remove_edge(job, dep_id)
            _unblock_if_free(tb, job)
            continue
        decided.add(job_id)
        new_state = CANCELLED if policy == "cancel" else DEPENDENCY_FAILED
        error = f"dependency job {dep_id} ended as {dep.state}"
        job.finished_at = now
        job.error = error
        job.reason = error
        job.paused_from = None
        tb.move(job, new_state)
        tb.transitions.append(
            Transition(job_id, job.type, new_state, (dep_id,), error, job.attempt)
        )
        out.append(
            Ended(
                job_id,
                new_state,
                job.parent_id,
                job.active_children,
                error,
                cascade=policy == "cancel",
            )
        )
    return out


def _unblock_if_free(tb: Table, job: Job) -> None:
    """Move a blocked job on once no dependency is outstanding (and forget its dependencies)."""
    if job.waiting:
        return
    tb.wakes = True
    now = tb.now
    if job.expires_at is not None:  # its ttl counts from now (see sql.cascade._ttl_from_now)
        job.expires_at = max(job.run_at, now) + (job.expires_at - job.run_at)
        tb.push_expiry(job)
    if job.state is BLOCKED:
        job.ready_at = now
        job.reason = "dependencies completed"
        job.deps = None
        tb.move(job, SCHEDULED if job.run_at > now else PENDING)
        tb.transitions.append(Transition(job.id, job.type, job.state))
    elif job.state is PAUSED and job.paused_from is BLOCKED:
        job.paused_from = SCHEDULED if job.run_at > now else PENDING
        job.deps = None


def _child_ended(tb: Table, child: Ended) -> list[Ended]:
    """Count a child out of its parent and move the parent on when it was the last one."""
    parent_id = child.parent_id
    assert parent_id is not None
    parent = tb.jobs.get(parent_id)
    if parent is None:
        return []
    parent.active_children = max(0, parent.active_children - 1)
    if parent.wait_for == f"job:{child.id}":
        return []  # the parent is joining this child: it wakes and sees the outcome itself
    state = parent.state
    if state in TERMINAL:
        return []
    now = tb.now
    if child.state in FAILED_CHILD_STATES and parent.fail_fast:
        error = f"child job {child.id} ended as {child.state}: {child.error}"
        out = cancel_descendants(tb, parent_id, f"sibling job {child.id} failed")
        if parent.state is RUNNING:
            parent.child_failed = True
            parent.error = error
            return out
        parent.finished_at = now
        parent.error = error
        parent.reason = "fail_fast"
        parent.paused_from = None
        tb.move(parent, FAILED)
        tb.transitions.append(
            Transition(parent_id, parent.type, FAILED, error=error, attempt=parent.attempt)
        )
        out.append(Ended(parent_id, FAILED, parent.parent_id, 0, error))
        return out
    if parent.active_children > 0:
        return []
    if state is WAITING or (state is PAUSED and parent.paused_from is WAITING):
        if parent.needs_finalize:
            tb.wakes = True
            parent.paused_from = PENDING if state is PAUSED else None
            parent.phase = "finalize"
            parent.ready_at = now
            parent.reason = "children finished"
            tb.move(parent, PAUSED if state is PAUSED else PENDING)
            return []
        parent.finished_at = now
        parent.paused_from = None
        parent.reason = "children finished"
        tb.move(parent, COMPLETED)
        started = parent.a_started if parent.a_number is not None else None
        tb.transitions.append(
            Transition(
                parent_id,
                parent.type,
                COMPLETED,
                attempt=parent.attempt,
                duration=now - started if started else None,
            )
        )
        return [Ended(parent_id, COMPLETED, parent.parent_id, 0, None)]
    return []


def descendants(tb: Table, root_id: int, include_root: bool = True) -> list[int]:
    """The ids of `root_id`'s descendants (and of itself), whatever their states, sorted."""
    children = tb.children
    found: list[int] = [root_id] if include_root else []
    stack = list(children.get(root_id, ()))
    while stack:
        job_id = stack.pop()
        found.append(job_id)
        below = children.get(job_id)
        if below:
            stack.extend(below)
    found.sort()
    return found


def cancel_descendants(tb: Table, root_id: int, reason: str) -> list[Ended]:
    """Cancel every active descendant of `root_id`; running ones are asked to stop."""
    return cancel_tree(tb, root_id, reason, include_root=False)


def cancel_tree(tb: Table, root_id: int, reason: str, *, include_root: bool = True) -> list[Ended]:
    """Cancel a job and its active descendants: idle ones at once, running ones by request."""
    jobs = tb.jobs
    rows = [
        job
        for job_id in descendants(tb, root_id, include_root)
        if (job := jobs.get(job_id)) is not None and job.state not in TERMINAL
    ]
    out: list[Ended] = []
    now = tb.now
    for job in rows:
        if job.state is RUNNING:
            job.cancel_requested = True
            job.reason = reason
            continue
        job.finished_at = now
        job.reason = reason
        job.paused_from = None
        tb.move(job, CANCELLED)
        tb.transitions.append(
            Transition(job.id, job.type, CANCELLED, error=reason, attempt=job.attempt)
        )
        out.append(Ended(job.id, CANCELLED, job.parent_id, job.active_children, job.error))
    return out


def wake(tb: Table, reasons: Iterable[str]) -> None:
    """Move suspended jobs waiting for any of `reasons` back to pending."""
    jobs = tb.jobs
    now = tb.now
    for reason in reasons:
        waiting = tb.waits.get(reason)
        if not waiting:
            continue
        for job_id in sorted(waiting):
            job = jobs.get(job_id)
            if job is None or job.wait_for != reason:
                continue
            if job.state is SUSPENDED:
                tb.set_wait_for(job, None)
                job.run_at = now
                job.ready_at = now
                tb.move(job, PENDING)
                tb.wakes = True
            elif job.state is PAUSED and job.paused_from is SUSPENDED:
                tb.set_wait_for(job, None)
                job.paused_from = PENDING
                tb.wakes = True
