"""Durable-job rows: fenced checkpoints, atomic spawns, the event latch, and early wake-ups."""

from __future__ import annotations

from wireframe.store.records import Checkpoint, EventRecord, Lease, LeaseStatus, NewJob
from wireframe.store.sql.cascade import waiting_for, wake
from wireframe.store.sql.locks import lock
from wireframe.store.sql.rows import TERMINAL
from wireframe.store.sql.submit import submit
from wireframe.store.sql.tx import Tx


def hold_lease(tx: Tx, now: float, lease: Lease, lease_ttl: float) -> LeaseStatus:
    """Extend the lease if the writer still holds it and nobody asked the job to stop.

    OK, or why a write under the lease is refused: LOST, or CANCEL_REQUESTED (the job was
    cancelled, or a child failed with fail_fast; its lease is then left as it is).
    """
    row = tx.execute(
        "UPDATE jobs SET lease_expires_at = CASE WHEN cancel_requested = 0 AND child_failed = 0 "
        "THEN ? ELSE lease_expires_at END WHERE id = ? AND claim_seq = ? AND state = 'running' "
        "RETURNING cancel_requested, child_failed",
        (now + lease_ttl, lease.job_id, lease.claim_seq),
    ).fetchone()
    if row is None:
        return LeaseStatus.LOST
    return LeaseStatus.CANCEL_REQUESTED if row[0] or row[1] else LeaseStatus.OK


def checkpoints(tx: Tx, job_id: int) -> list[Checkpoint]:
    """Every checkpoint of a job, in call order."""
    return [
        Checkpoint(*row)
        for row in tx.execute(
            "SELECT job_id, seq, name, kind, value, created_at FROM checkpoints "
            "WHERE job_id = ? ORDER BY seq",
            (job_id,),
        )
    ]


_PUT = (
    "INSERT INTO checkpoints (job_id, seq, name, kind, value, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, seq) DO UPDATE SET "
    "name = excluded.name, kind = excluded.kind, value = excluded.value"
)


def put_checkpoint(
    tx: Tx,
    now: float,
    lease: Lease,
    seq: int,
    name: str,
    kind: str,
    value: str | None,
    lease_ttl: float,
) -> LeaseStatus:
    """Record (or update) the checkpoint at `seq`, fenced on the lease; OK, or why not."""
    status = hold_lease(tx, now, lease, lease_ttl)
    if status is LeaseStatus.OK:
        tx.execute(_PUT, (lease.job_id, seq, name, kind, value, now))
    return status


def spawn_child(
    tx: Tx,
    now: float,
    lease: Lease,
    seq: int,
    name: str,
    job: NewJob,
    lease_ttl: float,
) -> int | LeaseStatus:
    """Submit a child and record the spawn checkpoint in one step; its id, or why not."""
    # The spawning job, the child's parent (itself, or its own parent for a sibling) and the
    # child's dependencies: every row this writes, locked in order first.
    lock(tx, [lease.job_id, job.parent_id, *job.depends_on])
    status = hold_lease(tx, now, lease, lease_ttl)
    if status is not LeaseStatus.OK:
        return status
    [result] = submit(tx, now, [job])
    tx.execute(
        "INSERT INTO checkpoints (job_id, seq, name, kind, value, created_at) "
        "VALUES (?, ?, ?, 'spawn', ?, ?)",
        (lease.job_id, seq, name, str(result.id), now),
    )
    return result.id


def emit_event(tx: Tx, now: float, name: str, payload: str | None) -> bool:
    """Set the latch and wake every job waiting for it; False if it was already set."""
    tx.dialect.lock_name(tx, f"event:{name}")
    return _set_latch(tx, now, name, payload)


def emit_from_job(
    tx: Tx,
    now: float,
    lease: Lease,
    seq: int,
    name: str,
    event: str,
    payload: str | None,
    lease_ttl: float,
) -> bool | LeaseStatus:
    """A running job's emit: the latch, its waiters and the emit checkpoint, fenced on the
    lease; whether this emit set the latch, or why the lease refused it."""
    key = f"event:{event}"
    tx.dialect.lock_name(tx, key)
    # The emitting job and the jobs the latch wakes, locked in order first (after the name).
    if tx.dialect.lock:
        lock(tx, [lease.job_id, *waiting_for(tx, [key])])
    status = hold_lease(tx, now, lease, lease_ttl)
    if status is not LeaseStatus.OK:
        return status
    won = _set_latch(tx, now, event, payload)
    tx.execute(_PUT, (lease.job_id, seq, name, "emit", "true" if won else "false", now))
    return won


def _set_latch(tx: Tx, now: float, name: str, payload: str | None) -> bool:
    """Insert the event (the caller holds its name lock) and wake its waiters if it is new."""
    cur = tx.execute(
        "INSERT INTO events (name, payload, emitted_at) VALUES (?, ?, ?) "
        "ON CONFLICT (name) DO NOTHING",
        (name, payload, now),
    )
    if cur.rowcount == 0:
        return False
    wake(tx, now, [f"event:{name}"])
    return True


def get_event(tx: Tx, name: str) -> EventRecord | None:
    """The emitted event, or None if nobody emitted it yet."""
    row = tx.execute(
        "SELECT name, payload, emitted_at FROM events WHERE name = ?", (name,)
    ).fetchone()
    return EventRecord(*row) if row else None


def already_happened(tx: Tx, wait_for: str, job_id: int) -> bool:
    """True if what job `job_id` is about to wait for has happened already (no lost wake-up).

    Only a job's own children wake it when they end, so waiting for any other job counts as
    happened: the job runs again at once and sees for itself.
    """
    kind, _, key = wait_for.partition(":")
    if kind == "event":
        # Serialised with emit_event, so an emit racing this suspension is never lost.
        tx.dialect.lock_name(tx, wait_for)
        return tx.execute("SELECT 1 FROM events WHERE name = ?", (key,)).fetchone() is not None
    if kind == "job":
        # Locked, so the job cannot end between this check and this transaction's commit
        # (`finish` locked it already, in order, with the job that suspends).
        lock(tx, [int(key)])
        row = tx.execute("SELECT state, parent_id FROM jobs WHERE id = ?", (int(key),)).fetchone()
        return row is None or row[0] in TERMINAL or row[1] != job_id
    raise ValueError(f"suspend: unknown wait_for {wait_for!r}; use 'event:<name>' or 'job:<id>'")
