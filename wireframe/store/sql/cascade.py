"""What follows when jobs end: dependents unblock or fail, parents count children, trees cancel.

Every row a cascade writes is locked first, in the order of `wireframe.store.sql.locks`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from wireframe.store.records import JobState, Transition
from wireframe.store.sql.locks import lock
from wireframe.store.sql.rows import (
    TERMINAL,
    TERMINAL_SQL,
    Ended,
    chunks,
    placeholders,
)
from wireframe.store.sql.tx import Tx

FAILED_CHILD_STATES = ("failed", "expired", "dependency_failed")


def settle(tx: Tx, now: float, ended: Iterable[Ended]) -> None:
    """Propagate the consequences of jobs that just became terminal, wave after wave."""
    wave = list(ended)
    while wave:
        following: list[Ended] = []
        for part in chunks([e.id for e in wave if e.blocked_on]):
            tx.execute(
                f"DELETE FROM job_deps WHERE job_id IN ({placeholders(len(part))})", tuple(part)
            )
        resolving = [e for e in wave if e.cascade and e.dependents]
        following.extend(_resolve_dependents(tx, now, resolving))
        for e in wave:
            if e.active_children > 0:
                following.extend(
                    cancel_descendants(tx, now, e.id, f"parent job {e.id} ended ({e.state})")
                )
            if e.parent_id is not None:
                following.extend(_child_ended(tx, now, e))
        # Only a parent joins a job (`ctx.join` takes its own children), so only children wake,
        # and what wakes is their parent: locked already.
        wake(tx, now, [f"job:{e.id}" for e in wave if e.parent_id is not None], held=True)
        wave = following


def _resolve_dependents(tx: Tx, now: float, wave: list[Ended]) -> list[Ended]:
    """Unblock, fail or cancel the jobs that depend on the jobs in `wave`."""
    if not wave:
        return []
    by_id = {e.id: e for e in wave}
    edges = _edges(tx, list(by_id))
    dependents = {edge[0] for edge in edges}
    if tx.dialect.lock and dependents - tx.held:
        # A dependent that ends is counted out of its parent: both locked, in order, first,
        # then read as locked. No edge can appear meanwhile: adding one locks the dependency,
        # which this transaction holds.
        lock(tx, dependents, parents=True)
        edges = _edges(tx, list(by_id))
    out: list[Ended] = []
    decided: set[int] = set()
    for job_id, dep_id, policy, state, parent_id, active_children, type_, attempt in edges:
        if job_id in decided or state in TERMINAL:
            continue
        dep = by_id[dep_id]
        if dep.state == "completed" or policy == "ignore":
            tx.execute("DELETE FROM job_deps WHERE job_id = ? AND dep_id = ?", (job_id, dep_id))
            _unblock_if_free(tx, now, job_id)
            continue
        decided.add(job_id)
        new_state = "cancelled" if policy == "cancel" else "dependency_failed"
        error = f"dependency job {dep_id} ended as {dep.state}"
        tx.execute(
            "UPDATE jobs SET state = ?, finished_at = ?, error = ?, reason = ?, "
            "paused_from = NULL WHERE id = ?",
            (new_state, now, error, error, job_id),
        )
        tx.transitions.append(
            Transition(job_id, type_, JobState(new_state), (dep_id,), error, attempt)
        )
        out.append(
            Ended(job_id, new_state, parent_id, active_children, error, cascade=policy == "cancel")
        )
    return out


_Edge = tuple[int, int, str, str | None, int | None, int, str, int]


def _edges(tx: Tx, dep_ids: list[int]) -> list[_Edge]:
    """The dependency edges onto `dep_ids`, with what the dependent's row says."""
    edges: list[_Edge] = []
    for part in chunks(dep_ids):
        edges.extend(
            tx.execute(
                f"SELECT d.job_id, d.dep_id, j.on_dep_failure, j.state, j.parent_id, "
                f"j.active_children, j.type, j.attempt FROM job_deps d JOIN jobs j "
                f"ON j.id = d.job_id "
                f"WHERE d.dep_id IN ({placeholders(len(part))}) ORDER BY d.job_id",
                tuple(part),
            ).fetchall()
        )
    return edges


def _unblock_if_free(tx: Tx, now: float, job_id: int) -> None:
    """Move a blocked job on once no dependency is outstanding (and forget its dependencies)."""
    if tx.execute("SELECT 1 FROM job_deps WHERE job_id = ? LIMIT 1", (job_id,)).fetchone():
        return
    tx.wakes = True
    rebase = _ttl_from_now(tx)
    row = tx.execute(
        "UPDATE jobs SET state = CASE WHEN run_at > ? THEN 'scheduled' ELSE 'pending' END, "
        f"ready_at = ?, reason = 'dependencies completed', deps = NULL, {rebase} "
        "WHERE id = ? AND state = 'blocked' "
        "RETURNING type, state",
        (now, now, now, job_id),
    ).fetchone()
    if row is not None:
        tx.transitions.append(Transition(job_id, row[0], JobState(row[1])))
    tx.execute(
        "UPDATE jobs SET paused_from = CASE WHEN run_at > ? THEN 'scheduled' ELSE 'pending' END, "
        f"deps = NULL, {rebase} WHERE id = ? AND state = 'paused' AND paused_from = 'blocked'",
        (now, now, job_id),
    )


def _ttl_from_now(tx: Tx) -> str:
    """The SET clause that starts a just-unblocked job's ttl now (one parameter: now).

    A ttl counts from when the job may first run: for a blocked job, from when its last
    dependency completed (or its run time, if later); at submission its `expires_at` was
    counted from its run time as if it had no dependencies.
    """
    start = tx.dialect.greatest("run_at", "?")
    return f"expires_at = {start} + (expires_at - run_at)"


def _child_ended(tx: Tx, now: float, child: Ended) -> list[Ended]:
    """Count a child out of its parent and move the parent on when it was the last one."""
    lock(tx, [child.parent_id])
    row = tx.execute(
        f"UPDATE jobs SET active_children = {tx.dialect.greatest('0', 'active_children - 1')} "
        "WHERE id = ? "
        "RETURNING state, active_children, fail_fast, needs_finalize, paused_from, parent_id, "
        "wait_for, type, attempt",
        (child.parent_id,),
    ).fetchone()
    if row is None:
        return []
    state, remaining, fail_fast, needs_finalize, paused_from, grandparent, wait_for = row[:7]
    type_, attempt = row[7:]
    if wait_for == f"job:{child.id}":
        return []  # the parent is joining this child: it wakes and sees the outcome itself
    parent_id = child.parent_id
    assert parent_id is not None
    if state in TERMINAL:
        return []
    if child.state in FAILED_CHILD_STATES and fail_fast:
        error = f"child job {child.id} ended as {child.state}: {child.error}"
        out = cancel_descendants(tx, now, parent_id, f"sibling job {child.id} failed")
        if state == "running":
            tx.execute(
                "UPDATE jobs SET child_failed = 1, error = ? WHERE id = ?", (error, parent_id)
            )
            return out
        tx.execute(
            "UPDATE jobs SET state = 'failed', finished_at = ?, error = ?, reason = ?, "
            "paused_from = NULL WHERE id = ?",
            (now, error, "fail_fast", parent_id),
        )
        tx.transitions.append(
            Transition(parent_id, type_, JobState.FAILED, error=error, attempt=attempt)
        )
        out.append(Ended(parent_id, "failed", grandparent, 0, error))
        return out
    if remaining > 0:
        return []
    if state == "waiting" or (state == "paused" and paused_from == "waiting"):
        if needs_finalize:
            tx.wakes = True
            target = "pending" if state == "waiting" else "paused"
            tx.execute(
                "UPDATE jobs SET state = ?, paused_from = CASE WHEN ? = 'paused' "
                "THEN 'pending' ELSE NULL END, phase = 'finalize', ready_at = ?, "
                "reason = 'children finished' WHERE id = ?",
                (target, target, now, parent_id),
            )
            return []
        tx.execute(
            "UPDATE jobs SET state = 'completed', finished_at = ?, paused_from = NULL, "
            "reason = 'children finished' WHERE id = ?",
            (now, parent_id),
        )
        tx.transitions.append(
            Transition(
                parent_id,
                type_,
                JobState.COMPLETED,
                attempt=attempt,
                duration=_since_attempt(tx, now, parent_id, attempt),
            )
        )
        return [Ended(parent_id, "completed", grandparent, 0, None)]
    return []


def _since_attempt(tx: Tx, now: float, job_id: int, attempt: int) -> float | None:
    """Seconds since attempt `attempt` of a job first started (None if it never did)."""
    row = tx.execute(
        "SELECT started_at FROM attempts WHERE job_id = ? AND attempt = ?", (job_id, attempt)
    ).fetchone()
    return None if row is None or row[0] is None else now - row[0]


def cancel_descendants(tx: Tx, now: float, root_id: int, reason: str) -> list[Ended]:
    """Cancel every active descendant of `root_id`; running ones are asked to stop."""
    return cancel_tree(tx, now, root_id, reason, include_root=False)


def cancel_tree(
    tx: Tx, now: float, root_id: int, reason: str, *, include_root: bool = True
) -> list[Ended]:
    """Cancel a job and its active descendants: idle ones at once, running ones by request."""
    rows = _tree(tx, root_id, include_root)
    if tx.dialect.lock:
        # The tree and the root's parent (counted when the root ends), locked in order first;
        # then read again as locked (a child spawned meanwhile is locked too, or we start over).
        wanted = {row[0] for row in rows}
        wanted |= {row[2] for row in rows if row[0] == root_id and row[2] is not None}
        if wanted - tx.held:
            lock(tx, wanted)
            rows = _tree(tx, root_id, include_root)
            lock(tx, [row[0] for row in rows])
    out: list[Ended] = []
    for job_id, state, parent_id, active_children, error, type_, attempt in rows:
        if state == "running":
            tx.execute(
                "UPDATE jobs SET cancel_requested = 1, reason = ? WHERE id = ?", (reason, job_id)
            )
            continue
        tx.execute(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, reason = ?, paused_from = NULL "
            "WHERE id = ?",
            (now, reason, job_id),
        )
        tx.transitions.append(
            Transition(job_id, type_, JobState.CANCELLED, error=reason, attempt=attempt)
        )
        out.append(Ended(job_id, "cancelled", parent_id, active_children, error))
    return out


def _tree(
    tx: Tx, root_id: int, include_root: bool
) -> list[tuple[int, str, int | None, int, str | None, str, int]]:
    """The active jobs of the tree under `root_id` (with the root itself if `include_root`)."""
    start = (
        "SELECT CAST(? AS BIGINT)" if include_root else "SELECT id FROM jobs WHERE parent_id = ?"
    )
    return list(
        tx.execute(
            f"WITH RECURSIVE tree(id) AS ({start} UNION ALL "
            f"SELECT j.id FROM jobs j JOIN tree t ON j.parent_id = t.id) "
            f"SELECT id, state, parent_id, active_children, error, type, attempt FROM jobs "
            f"WHERE id IN (SELECT id FROM tree) AND state NOT IN {TERMINAL_SQL} ORDER BY id",
            (root_id,),
        ).fetchall()
    )


_WAITING = "(state = 'suspended' OR (state = 'paused' AND paused_from = 'suspended'))"


def wake(tx: Tx, now: float, reasons: Iterable[str], *, held: bool = False) -> None:
    """Move suspended jobs waiting for any of `reasons` back to pending.

    `held`: every job that may wait for them is locked already (else they are locked first).
    """
    keys = list(reasons)
    for part in chunks(keys):
        if tx.dialect.lock and not held:
            lock(tx, waiting_for(tx, part))
        # A suspended job goes back to pending; a paused one will resume to pending.
        woken = tx.execute(
            "UPDATE jobs SET "
            "state = CASE WHEN state = 'suspended' THEN 'pending' ELSE state END, "
            "paused_from = CASE WHEN state = 'paused' THEN 'pending' ELSE paused_from END, "
            "run_at = CASE WHEN state = 'suspended' THEN ? ELSE run_at END, "
            "ready_at = CASE WHEN state = 'suspended' THEN ? ELSE ready_at END, "
            f"wait_for = NULL WHERE wait_for IN ({placeholders(len(part))}) AND {_WAITING}",
            (now, now, *part),
        )
        if woken.rowcount:
            tx.wakes = True


def waiting_for(tx: Tx, keys: Sequence[str]) -> list[int]:
    """The suspended jobs waiting for any of `keys` (`event:<name>`, `job:<id>`)."""
    found: list[int] = []
    for part in chunks(list(keys)):
        found.extend(
            row[0]
            for row in tx.execute(
                f"SELECT id FROM jobs WHERE wait_for IN ({placeholders(len(part))}) AND {_WAITING}",
                tuple(part),
            )
        )
    return found
