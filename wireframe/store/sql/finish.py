"""Fenced writes of running jobs: heartbeats, completions, failures and releases.

Row locks follow `wireframe.store.sql.locks`: a finish locks every job it moves, their parents
and the children they wait for, by id, before it writes any of them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from wireframe.store.records import (
    Beat,
    Complete,
    Fail,
    JobState,
    LeaseStatus,
    Outcome,
    Release,
    Transition,
)
from wireframe.store.sql.attempts import CLOSE_ATTEMPT, UPSERT
from wireframe.store.sql.cascade import settle
from wireframe.store.sql.durable import already_happened
from wireframe.store.sql.locks import lock, note_held
from wireframe.store.sql.rows import Ended, chunks, placeholders
from wireframe.store.sql.tx import Bulk, Tx, unnest

_Running = tuple[
    int,
    int,
    int | None,
    int,
    int,
    int,
    int,
    str,
    int,
    str | None,
    str | None,
    int,
    str,
    float,
    str,
]


def heartbeat(
    tx: Tx, now: float, beats: Sequence[Beat], lease_ttl: float
) -> dict[int, LeaseStatus]:
    """Extend the leases still held; report lost ones and requests to cancel or pause."""
    if not beats:
        return {}
    if tx.dialect.lock:
        return _heartbeat_all(tx, now, beats, lease_ttl)
    status: dict[int, LeaseStatus] = {}
    for beat in sorted(beats, key=lambda b: b.lease.job_id):
        row = tx.execute(
            "UPDATE jobs SET lease_expires_at = ?, progress = coalesce(?, progress), "
            "progress_message = coalesce(?, progress_message) "
            "WHERE id = ? AND claim_seq = ? AND state = 'running' "
            "RETURNING cancel_requested, pause_requested, child_failed",
            (now + lease_ttl, beat.progress, beat.message, beat.lease.job_id, beat.lease.claim_seq),
        ).fetchone()
        status[beat.lease.job_id] = _beat_status(row)
    return status


HEARTBEAT = (
    # Every row locked first, by id, in one statement (the global order of
    # `wireframe.store.sql.locks`), and held for one round trip, not one per beat.
    "WITH v AS MATERIALIZED (SELECT (e ->> 0)::bigint AS id, (e ->> 1)::int AS seq, "
    "(e ->> 2)::float8 AS progress, e ->> 3 AS message FROM json_array_elements(?::json) AS e), "
    # The lease is checked on the locked rows, and the update finds them by primary key alone
    # (a condition on `jobs.state` could let stale statistics pick every running job's index).
    "locked AS MATERIALIZED (SELECT id, claim_seq, state FROM jobs "
    "WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE) "
    "UPDATE jobs SET lease_expires_at = ?, progress = coalesce(v.progress, jobs.progress), "
    "progress_message = coalesce(v.message, jobs.progress_message) "
    "FROM locked JOIN v ON v.id = locked.id AND v.seq = locked.claim_seq "
    "WHERE jobs.id = locked.id AND locked.state = 'running' "
    "RETURNING jobs.id, jobs.cancel_requested, jobs.pause_requested, jobs.child_failed"
)
"""PostgreSQL's heartbeat of many jobs: one statement."""


def _heartbeat_all(
    tx: Tx, now: float, beats: Sequence[Beat], lease_ttl: float
) -> dict[int, LeaseStatus]:
    """Extend many leases with one statement (PostgreSQL)."""
    first: dict[int, Beat] = {}
    for beat in beats:
        first.setdefault(beat.lease.job_id, beat)  # a job beaten twice counts its first beat
    batch = json.dumps(
        [[b.lease.job_id, b.lease.claim_seq, b.progress, b.message] for b in first.values()]
    )
    rows = {
        row[0]: row[1:]
        for row in tx.execute(HEARTBEAT, (batch, sorted(first), now + lease_ttl)).fetchall()
    }
    return {job_id: _beat_status(rows.get(job_id)) for job_id in sorted(first)}


def _beat_status(row: Sequence[object] | None) -> LeaseStatus:
    """What a heartbeat's row (cancel_requested, pause_requested, child_failed) says."""
    if row is None:
        return LeaseStatus.LOST
    if row[0] or row[2]:
        return LeaseStatus.CANCEL_REQUESTED
    if row[1]:
        return LeaseStatus.PAUSE_REQUESTED
    return LeaseStatus.OK


def finish(tx: Tx, now: float, outcomes: Sequence[Outcome]) -> list[bool]:
    """Apply each outcome if its writer still holds the lease; return which were applied."""
    locked = _lock_first(tx, outcomes)
    plain = _complete_plain(tx, now, outcomes)
    held = _held_leases(tx, [o for o in outcomes if o.lease.job_id not in plain], locked)
    applied: list[bool] = []
    ended: list[Ended] = []
    closes: list[tuple[object, ...]] = []
    completes: list[tuple[object, ...]] = []
    for outcome in outcomes:
        done = plain.pop(outcome.lease.job_id, None)
        if done is not None:
            applied.append(True)
            if done[1] is not None or done[3]:  # else nothing follows from its end
                ended.append(
                    Ended(
                        done[0],
                        "completed",
                        done[1],
                        0,
                        None,
                        blocked_on=False,
                        dependents=done[3],
                    )
                )
            continue
        row = held.get(outcome.lease.job_id)
        if row is None or row[1] != outcome.lease.claim_seq:
            applied.append(False)
            continue
        del held[outcome.lease.job_id]
        applied.append(True)
        job_id, _, parent_id, kids, attempt, max_attempts, child_failed, phase, cancel = row[:9]
        err, deps = row[10], row[11]
        attempt_of = (job_id, attempt, row[12], row[13])  # id, number, worker, started at
        # A job that ran holds no dependency edges; the row says whether anything depends on it.
        flags = {"blocked_on": False, "dependents": bool(deps)}
        if child_failed:
            _end(tx, now, job_id, "failed", err, None)
            ended.append(Ended(job_id, "failed", parent_id, kids, err, **flags))
            closes.append((*attempt_of, now, "failed", err))
            _moved(tx, row, "failed", err)
        elif isinstance(outcome, Complete):
            closes.append((*attempt_of, now, "completed", None))
            params = _complete(now, job_id, outcome, kids, phase)
            completes.append(params)
            if params[0] == "completed":
                ended.append(Ended(job_id, "completed", parent_id, kids, None, **flags))
            _moved(tx, row, str(params[0]))
        elif isinstance(outcome, Fail):
            closes.append((*attempt_of, now, outcome.outcome, outcome.error))
            if outcome.retry_at is not None and not cancel and attempt < max_attempts:
                retried = "scheduled" if outcome.retry_at > now else "pending"
                _moved(tx, row, retried, outcome.error)
                tx.wakes = True
                tx.execute(
                    "UPDATE jobs SET state = CASE WHEN ? > ? THEN 'scheduled' ELSE 'pending' END, "
                    "run_at = ?, ready_at = ?, new_attempt = 1, error = ?, traceback = ?, "
                    "reason = ?, worker_id = NULL, lease_expires_at = NULL WHERE id = ?",
                    (
                        outcome.retry_at,
                        now,
                        outcome.retry_at,
                        max(now, outcome.retry_at),
                        outcome.error,
                        outcome.traceback,
                        f"retry after attempt {attempt}",
                        job_id,
                    ),
                )
            else:
                state = "cancelled" if cancel else "failed"
                _end(tx, now, job_id, state, outcome.error, outcome.traceback)
                ended.append(Ended(job_id, state, parent_id, kids, outcome.error, **flags))
                _moved(tx, row, state, outcome.error)
        else:
            released = _release(tx, now, job_id, outcome, cancel)
            closes.append((*attempt_of, now, outcome.reason, None))
            if released == "cancelled":
                ended.append(Ended(job_id, released, parent_id, kids, err, **flags))
            _moved(tx, row, released, outcome.reason if released == "cancelled" else None)
    tx.bulk(COMPLETE, completes)
    tx.bulk(CLOSE_ATTEMPT, closes)
    if ended:
        settle(tx, now, ended)
    return applied


def _moved(tx: Tx, row: _Running, state: str, error: str | None = None) -> None:
    """Report where `finish` put the job of an outcome it applied (an `own` Transition)."""
    tx.transitions.append(
        Transition(
            row[0],
            row[14],
            JobState(state),
            error=error,
            attempt=row[4],
            children=row[3] if state == "waiting" else 0,
            own=True,
        )
    )


def _plain(outcome: Outcome) -> bool:
    """Whether `COMPLETE_PLAIN` may end the job (if it has no children and no failed child)."""
    return isinstance(outcome, Complete) and not outcome.needs_finalize


# A lost worker spends no attempt: its reclaims raise the bound the attempt number is held to.
_RUNNING_COLUMNS = (
    "id, claim_seq, parent_id, active_children, attempt, max_attempts + reclaims, "
    "child_failed, phase, "
    "cancel_requested, result, error, has_dependents, worker_id, attempt_started_at, type"
)

LOCK_FIRST = (
    # A job's parent never changes, so it is read without a lock; one array of ids, as an OR
    # of two conditions would let the planner scan the index of every child job instead.
    f"SELECT {_RUNNING_COLUMNS}, state FROM jobs WHERE id = ANY(ARRAY("
    "SELECT unnest(?::bigint[]) UNION SELECT parent_id FROM jobs WHERE id = ANY(?::bigint[]))) "
    "ORDER BY id FOR UPDATE"
)
"""Lock the jobs of a finish, their parents and the children they wait for, in id order, and
read them as locked."""


def _lock_first(tx: Tx, outcomes: Sequence[Outcome]) -> dict[int, _Running] | None:
    """PostgreSQL: take the locks the outcomes need before writing anything, in the order of
    `wireframe.store.sql.locks`: the names of the events suspensions wait for, then the jobs
    with their parents (counted when a job ends) and the children they wait for (checked
    when they suspend), by id; return the running rows among them, as `_held_leases` would.

    A batch of plain completions only is left to `COMPLETE_PLAIN`, which locks the same rows
    in the same order itself (None).
    """
    if not tx.dialect.lock:
        return None
    waits = [
        o.wait_for
        for o in outcomes
        if isinstance(o, Release) and o.to == "suspended" and o.wait_for is not None
    ]
    for name in sorted({w for w in waits if w.startswith("event:")}):
        tx.dialect.lock_name(tx, name)
    if not tx.plan and all(_plain(o) for o in outcomes):
        return None
    jobs = {o.lease.job_id for o in outcomes}
    kids = {int(key) for w in waits for kind, _, key in [w.partition(":")] if kind == "job"}
    want = sorted(jobs | kids | tx.plan)
    rows = tx.execute(LOCK_FIRST, (want, sorted(jobs))).fetchall()
    note_held(tx, want)
    note_held(tx, (row[0] for row in rows))
    return {row[0]: row[:-1] for row in rows if row[0] in jobs and row[-1] == "running"}


COMPLETE_PLAIN = (
    # The batch arrives as one JSON array of [id, claim_seq, result] and the ids as one
    # array literal: psycopg dumps a Python list element by element, which cost more
    # than the statement.
    "WITH v AS MATERIALIZED (SELECT (e ->> 0)::bigint AS id, (e ->> 1)::int AS seq, "
    "e ->> 2 AS result FROM json_array_elements(?::json) AS e), "
    # Lock every row first, with the parents the cascade will count the jobs out of, in id
    # order (`wireframe.store.sql.locks`): a join decides its own order, and transactions
    # would deadlock on the difference. The primary key finds them (a join could pick the
    # index of every running job instead); a job's parent never changes, so it is read
    # without a lock.
    "locked AS MATERIALIZED (SELECT id, claim_seq, worker_id, attempt_started_at, state, "
    "active_children, child_failed FROM jobs WHERE id = ANY(ARRAY(SELECT unnest(?::bigint[]) "
    "UNION SELECT parent_id FROM jobs WHERE id = ANY(?::bigint[]))) ORDER BY id FOR UPDATE), "
    "done AS (UPDATE jobs SET state = 'completed', needs_finalize = 0, result = v.result, "
    "finished_at = ?, ready_at = ?, progress = 1.0, reason = NULL, worker_id = NULL, "
    "lease_expires_at = NULL "
    "FROM locked JOIN v ON v.id = locked.id AND v.seq = locked.claim_seq "
    "WHERE jobs.id = locked.id AND locked.state = 'running' AND locked.active_children = 0 "
    "AND locked.child_failed = 0 "
    "RETURNING jobs.id, jobs.parent_id, jobs.attempt, jobs.has_dependents, "
    "locked.worker_id, locked.attempt_started_at), "
    # Each attempt's row is written as it ends (`wireframe.store.sql.attempts`), with the
    # worker and start time the lock read before the update cleared them.
    "closed AS (INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, "
    "outcome, error) SELECT id, attempt, worker_id, coalesce(attempt_started_at, ?), ?, "
    f"'completed', NULL FROM done {UPSERT}) "
    # The transaction's id rides along: the store needs it before COMMIT (`PostgresStore.finish`).
    "SELECT id, parent_id, attempt, has_dependents FROM done"
)
"""End held, childless jobs whose handler returned and close their attempts: one statement
that checks the leases and writes."""

_PLAIN_SQLITE = (
    "jobs.id = v.value ->> 0 AND jobs.claim_seq = v.value ->> 1 "
    "AND jobs.state = 'running' AND jobs.active_children = 0 AND jobs.child_failed = 0"
)

CLOSE_PLAIN_SQLITE = (
    "INSERT INTO attempts (job_id, attempt, worker_id, started_at, finished_at, outcome, error) "
    "SELECT jobs.id, jobs.attempt, jobs.worker_id, coalesce(jobs.attempt_started_at, ?1), ?1, "
    f"'completed', NULL FROM json_each(?2) AS v, jobs WHERE {_PLAIN_SQLITE} {UPSERT}"
)
"""SQLite's `COMPLETE_PLAIN`, first half: write the attempt rows of the jobs the second half
ends (the same rows: the transaction holds the write lock), while they still name the worker.
The batch arrives as one JSON array of [id, claim_seq, result]."""

COMPLETE_PLAIN_SQLITE = (
    "UPDATE jobs SET state = 'completed', needs_finalize = 0, result = v.value ->> 2, "
    "finished_at = ?1, ready_at = ?1, progress = 1.0, reason = NULL, worker_id = NULL, "
    "lease_expires_at = NULL "
    f"FROM json_each(?2) AS v WHERE {_PLAIN_SQLITE} "
    "RETURNING jobs.id, jobs.parent_id, jobs.attempt, jobs.has_dependents"
)
"""SQLite's `COMPLETE_PLAIN`, second half: end the jobs. A third less work per job than the
general path's lease SELECT and one UPDATE per job."""


def _complete_plain(
    tx: Tx, now: float, outcomes: Sequence[Outcome]
) -> dict[int, tuple[int, int | None, int, bool]]:
    """Complete the jobs `COMPLETE_PLAIN` can end outright; the rest take the general path.

    Returns (id, parent, attempt, has dependents) by job id, attempts already closed. A job
    whose lease is gone, that has children, or a failed child is left alone here and judged by
    the general path.
    """
    first: dict[int, Complete] = {}
    for o in outcomes:
        if isinstance(o, Complete) and not o.needs_finalize:
            # The first outcome for a job is the one judged; a repeat is refused afterwards
            # (a join with two rows for one job would pick either).
            first.setdefault(o.lease.job_id, o)
    plain = sorted(first.values(), key=lambda o: o.lease.job_id)  # lock in id order
    if not plain:
        return {}
    batch = json.dumps([[o.lease.job_id, o.lease.claim_seq, o.result] for o in plain])
    if tx.dialect.name == "sqlite":
        tx.execute(CLOSE_PLAIN_SQLITE, (now, batch))
        rows = tx.execute(COMPLETE_PLAIN_SQLITE, (now, batch)).fetchall()
    else:
        ids = "{" + ",".join(str(o.lease.job_id) for o in plain) + "}"  # an array literal
        rows = tx.execute(COMPLETE_PLAIN, (batch, ids, ids, now, now, now, now)).fetchall()
        note_held(tx, [o.lease.job_id for o in plain])
        note_held(tx, [row[1] for row in rows if row[1] is not None])
    return {row[0]: (row[0], row[1], row[2], bool(row[3])) for row in rows}


def _held_leases(
    tx: Tx, outcomes: Sequence[Outcome], locked: dict[int, _Running] | None
) -> dict[int, _Running]:
    """The running rows the outcomes refer to, keyed by job id (`locked`: as `_lock_first`
    read them; the rows of jobs a plain completion ended since are left out)."""
    ids = sorted(o.lease.job_id for o in outcomes)
    if locked is not None:
        return {i: locked[i] for i in ids if i in locked}
    lock(tx, ids)  # nothing new: `COMPLETE_PLAIN` holds them
    rows: dict[int, _Running] = {}
    for part in chunks(ids):
        for row in tx.execute(
            f"SELECT {_RUNNING_COLUMNS} FROM jobs "
            f"WHERE id IN ({placeholders(len(part))}) AND state = 'running' ORDER BY id",
            tuple(part),
        ):
            rows[row[0]] = row
    return rows


def _end(
    tx: Tx,
    now: float,
    job_id: int,
    state: str,
    error: str | None,
    traceback: str | None,
) -> None:
    """Move a running job to a terminal state (a failure clears why it waited before: its error
    says why it ended; a cancel keeps the cancel's reason)."""
    tx.execute(
        "UPDATE jobs SET state = ?, finished_at = ?, error = ?, "
        "traceback = coalesce(?, traceback), "
        "reason = CASE WHEN ? = 'failed' THEN NULL ELSE reason END, "
        "worker_id = NULL, lease_expires_at = NULL WHERE id = ?",
        (state, now, error, traceback, state, job_id),
    )


COMPLETE = Bulk(
    "UPDATE jobs SET state = ?1, phase = ?2, needs_finalize = ?3, result = ?4, "
    "finished_at = CASE WHEN ?1 = 'completed' THEN ?5 END, ready_at = ?5, "
    "progress = CASE WHEN ?1 = 'completed' THEN 1.0 ELSE progress END, "
    "reason = CASE WHEN ?1 = 'completed' THEN NULL ELSE reason END, "
    "worker_id = NULL, lease_expires_at = NULL WHERE id = ?6",
    "UPDATE jobs SET state = v.state, phase = v.phase, needs_finalize = v.nf, result = v.result, "
    "finished_at = CASE WHEN v.state = 'completed' THEN v.now END, ready_at = v.now, "
    "progress = CASE WHEN v.state = 'completed' THEN 1.0 ELSE jobs.progress END, "
    "reason = CASE WHEN v.state = 'completed' THEN NULL ELSE jobs.reason END, "
    "worker_id = NULL, lease_expires_at = NULL "
    f"FROM {unnest('text', 'text', 'int', 'text', 'float8', 'bigint')} "
    "AS v(state, phase, nf, result, now, id) WHERE jobs.id = v.id",
)
"""Store a result, then end the job, wait for its children or queue its finalize."""


def _complete(
    now: float, job_id: int, outcome: Complete, kids: int, phase: str
) -> tuple[object, ...]:
    """The COMPLETE parameters: store the result, then end, wait for children or finalize."""
    if phase == "execute" and kids > 0:
        state, next_phase = "waiting", "execute"
    elif phase == "execute" and outcome.needs_finalize:
        state, next_phase = "pending", "finalize"
    else:
        state, next_phase = "completed", phase
    return (state, next_phase, int(outcome.needs_finalize), outcome.result, now, job_id)


def _release(tx: Tx, now: float, job_id: int, outcome: Release, cancel: int) -> str:
    """Give a running job back without spending an attempt; return the state it is left in."""
    if outcome.to == "cancelled" or cancel:
        tx.execute(
            "UPDATE jobs SET state = 'cancelled', finished_at = ?, reason = ?, worker_id = NULL, "
            "lease_expires_at = NULL WHERE id = ?",
            (now, outcome.reason, job_id),
        )
        return "cancelled"
    run_at = outcome.run_at if outcome.run_at is not None else now
    if outcome.to == "paused":
        state, paused_from = "paused", "pending"
    elif outcome.to == "suspended":
        if outcome.wait_for is not None and already_happened(tx, outcome.wait_for, job_id):
            state, paused_from, run_at = "pending", None, now
        else:
            state, paused_from = "suspended", None
    elif run_at > now:
        state, paused_from = "scheduled", None
    else:
        state, paused_from = "pending", None
    wait_for = outcome.wait_for if state == "suspended" else None
    tx.wakes = True
    tx.execute(
        "UPDATE jobs SET state = ?, paused_from = ?, run_at = ?, ready_at = ?, reason = ?, "
        "pause_requested = 0, worker_id = NULL, lease_expires_at = NULL, wait_for = ? "
        "WHERE id = ?",
        (state, paused_from, run_at, max(now, run_at), outcome.reason, wait_for, job_id),
    )
    return state
