"""Operator control of jobs and their trees: cancel, pause, resume, retry, prune.

Every job row these write is locked first, in the order of `wireframe.store.sql.locks`.
"""

from __future__ import annotations

import json

from wireframe.store.errors import DuplicateKeyError, InvalidTransitionError, UnknownJobError
from wireframe.store.records import JobState, Transition
from wireframe.store.sql.cascade import cancel_tree, settle
from wireframe.store.sql.deps import still_waiting, wait_on
from wireframe.store.sql.locks import lock
from wireframe.store.sql.rows import TERMINAL, TERMINAL_SQL
from wireframe.store.sql.tx import Tx

_TREE = (
    "(WITH RECURSIVE tree(id) AS (SELECT CAST(? AS BIGINT) UNION ALL "
    "SELECT j.id FROM jobs j JOIN tree t ON j.parent_id = t.id) SELECT id FROM tree)"
)
"""The ids of a job and all its descendants (a subquery taking the root id)."""


def _state(tx: Tx, job_id: int, where: str) -> str:
    row = tx.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        raise UnknownJobError(job_id, where)
    return str(row[0])


def cancel(tx: Tx, now: float, job_id: int, reason: str) -> JobState:
    """Cancel a job and its descendants; return the job's state afterwards."""
    state = _state(tx, job_id, "cancel")
    if state in TERMINAL:
        return JobState(state)
    settle(tx, now, cancel_tree(tx, now, job_id, reason))
    return JobState(_state(tx, job_id, "cancel"))


def _lock_tree(tx: Tx, job_id: int) -> None:
    """Lock a job and its active descendants (PostgreSQL), in id order, before writing them."""
    if tx.dialect.lock:
        rows = tx.execute(
            f"SELECT id FROM jobs WHERE id IN {_TREE} AND state NOT IN {TERMINAL_SQL}", (job_id,)
        ).fetchall()
        lock(tx, [row[0] for row in rows])


def pause(tx: Tx, job_id: int) -> int:
    """Pause a job and its active descendants; running ones are asked to stop. Return how many."""
    state = _state(tx, job_id, "pause")
    if state in TERMINAL:
        raise InvalidTransitionError(f"pause: job {job_id} has already ended ({state})")
    _lock_tree(tx, job_id)
    requested = tx.execute(
        f"UPDATE jobs SET pause_requested = 1 WHERE id IN {_TREE} AND state = 'running' "
        f"RETURNING id",
        (job_id,),
    ).fetchall()
    paused = tx.execute(
        f"UPDATE jobs SET paused_from = state, state = 'paused', reason = 'paused' "
        f"WHERE id IN {_TREE} AND state NOT IN {TERMINAL_SQL} "
        f"AND state NOT IN ('running', 'paused') RETURNING id",
        (job_id,),
    ).fetchall()
    return len(requested) + len(paused)


def resume(tx: Tx, now: float, job_id: int) -> int:
    """Resume a paused job and its paused descendants. Return how many moved."""
    state = _state(tx, job_id, "resume")
    if state in TERMINAL:
        raise InvalidTransitionError(f"resume: job {job_id} has already ended ({state})")
    _lock_tree(tx, job_id)
    tx.execute(
        f"UPDATE jobs SET pause_requested = 0 WHERE id IN {_TREE} AND state = 'running'",
        (job_id,),
    )
    moved = tx.execute(
        "UPDATE jobs SET state = CASE "
        "WHEN paused_from = 'scheduled' AND run_at <= ? THEN 'pending' "
        "ELSE coalesce(paused_from, 'pending') END, "
        f"paused_from = NULL, ready_at = ?, reason = 'resumed' "
        f"WHERE id IN {_TREE} AND state = 'paused' RETURNING id",
        (now, now, job_id),
    ).fetchall()
    if moved:
        tx.wakes = True
    return len(moved)


def retry(tx: Tx, now: float, job_id: int) -> None:
    """Run an ended, unsuccessful job again with a fresh retry budget.

    A job that ended before its dependencies were all met (dependency_failed, cancelled or
    expired while blocked, or born dependency_failed) re-checks them: completed ones are met;
    if some are still active (pending, running, blocked, ... e.g. a failed dependency retried
    first) it goes back to blocked on those, reported as a BLOCKED transition like at submit,
    and runs once they complete. If one ended without completing (or was pruned, so how it
    ended is unknown), the retry is refused with InvalidTransitionError naming it, and nothing
    changes: retry that dependency first. With the "ignore" policy every ended dependency is
    met. A job that got past its dependencies retries to pending without looking at them.
    """
    row = _retry_row(tx, job_id)
    if row is not None and tx.dialect.lock:
        # The job, its parent (counted again) and its remembered dependencies (watched again):
        # locked in order first, then read as locked.
        deps = json.loads(row[5]) if row[5] else []
        lock(tx, [job_id, row[3], *(int(d) for d in deps)])
        row = _retry_row(tx, job_id)
    if row is None:
        raise UnknownJobError(job_id, "retry")
    state, type_, key, parent_id, policy, deps = row
    if state not in TERMINAL or state == "completed":
        raise InvalidTransitionError(
            f"retry: job {job_id} is {state}; only failed, cancelled, expired or "
            f"dependency_failed jobs can be retried"
        )
    if key is not None:
        holder = tx.execute(
            f"SELECT id FROM jobs WHERE type = ? AND key = ? AND state NOT IN {TERMINAL_SQL}",
            (type_, key),
        ).fetchone()
        if holder:
            raise DuplicateKeyError(
                f"retry: job {job_id}'s key {key!r} is held by active job {holder[0]}"
            )
    waiting = still_waiting(tx, job_id, policy, deps)
    tx.execute(
        f"UPDATE jobs SET state = ?, max_attempts = attempt + retry_budget, reclaims = 0, "
        "new_attempt = 1, finished_at = NULL, run_at = ?, ready_at = ?, expires_at = NULL, "
        "cancel_requested = 0, pause_requested = 0, child_failed = 0, phase = 'execute', "
        "needs_finalize = 0, reason = 'retried by operator', deps = NULL, "
        "active_children = (SELECT count(*) FROM jobs c WHERE c.parent_id = ? "
        f"AND c.state NOT IN {TERMINAL_SQL}) WHERE id = ?",
        ("blocked" if waiting else "pending", now, now, job_id, job_id),
    )
    if waiting:
        wait_on(tx, job_id, waiting)
        tx.transitions.append(Transition(job_id, type_, JobState.BLOCKED, tuple(waiting)))
    else:
        tx.wakes = True
    if parent_id is not None:
        tx.execute(
            f"UPDATE jobs SET active_children = active_children + 1 WHERE id = ? "
            f"AND state NOT IN {TERMINAL_SQL}",
            (parent_id,),
        )


def _retry_row(tx: Tx, job_id: int) -> tuple[str, str, str | None, int | None, str, str | None]:
    """What `retry` reads of a job: state, type, key, parent, policy and remembered deps."""
    return tx.execute(  # type: ignore[no-any-return]
        "SELECT state, type, key, parent_id, on_dep_failure, deps FROM jobs WHERE id = ?",
        (job_id,),
    ).fetchone()


def prune(
    tx: Tx,
    finished_before: float,
    states: tuple[str, ...] = (),
    domain: str | None = None,
    dry_run: bool = False,
) -> int:
    """Delete ended jobs (with their attempts) that finished before the given time, of these
    states and this domain if given; with `dry_run`, only count them."""
    where = f"finished_at < ? AND state IN {TERMINAL_SQL}"
    params: list[object] = [finished_before]
    if states:
        where += f" AND state IN ({','.join('?' * len(states))})"
        params += states
    if domain is not None:
        where += " AND domain = ?"
        params.append(domain)
    ids = [r[0] for r in tx.execute(f"SELECT id FROM jobs WHERE {where} ORDER BY id", params)]
    if dry_run:
        return len(ids)
    for start in range(0, len(ids), 500):
        part = ids[start : start + 500]
        lock(tx, part)  # in order (a retry may hold one)
        marks = ",".join("?" * len(part))
        tx.execute(f"DELETE FROM attempts WHERE job_id IN ({marks})", part)
        tx.execute(f"DELETE FROM checkpoints WHERE job_id IN ({marks})", part)
        tx.execute(f"DELETE FROM jobs WHERE id IN ({marks})", part)
    return len(ids)
