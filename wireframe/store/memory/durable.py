"""Durable-job rows: fenced checkpoints, atomic spawns, the event latch, and early wake-ups.

The memory twin of `wireframe.store.sql.durable`.
"""

from __future__ import annotations

from wireframe.store.errors import StoreError
from wireframe.store.memory.cascade import wake
from wireframe.store.memory.rows import RUNNING, TERMINAL, Job
from wireframe.store.memory.submit import apply, plan
from wireframe.store.memory.table import Table
from wireframe.store.records import Checkpoint, EventRecord, Lease, LeaseStatus, NewJob


def held(tb: Table, lease: Lease) -> Job | LeaseStatus:
    """The running job the lease holds, or why a write under it is refused: LOST, or
    CANCEL_REQUESTED for a job asked to stop (cancelled, or a child failed with fail_fast)."""
    job = tb.jobs.get(lease.job_id)
    if job is None or job.claim_seq != lease.claim_seq or job.state is not RUNNING:
        return LeaseStatus.LOST
    if job.cancel_requested or job.child_failed:
        return LeaseStatus.CANCEL_REQUESTED
    return job


def checkpoints(tb: Table, job_id: int) -> list[Checkpoint]:
    """Every checkpoint of a job, in call order."""
    found = tb.checkpoints.get(job_id)
    return [found[seq] for seq in sorted(found)] if found else []


def _put(tb: Table, job: Job, seq: int, name: str, kind: str, value: str | None) -> None:
    """Record (or update) the checkpoint at `seq`."""
    rows = tb.checkpoints.setdefault(job.id, {})
    old = rows.get(seq)
    created = tb.now if old is None else old.created_at
    rows[seq] = Checkpoint(job.id, seq, name, kind, value, created)


def put_checkpoint(
    tb: Table, lease: Lease, seq: int, name: str, kind: str, value: str | None, lease_ttl: float
) -> LeaseStatus:
    """Record (or update) the checkpoint at `seq`, fenced on the lease; OK, or why not."""
    job = held(tb, lease)
    if isinstance(job, LeaseStatus):
        return job
    tb.extend_lease(job, tb.now + lease_ttl)
    _put(tb, job, seq, name, kind, value)
    return LeaseStatus.OK


def spawn_child(
    tb: Table, lease: Lease, seq: int, name: str, job: NewJob, lease_ttl: float
) -> int | LeaseStatus:
    """Submit a child and record the spawn checkpoint in one step; its id, or why not."""
    parent = held(tb, lease)
    if isinstance(parent, LeaseStatus):
        return parent
    if seq in tb.checkpoints.get(parent.id, {}):
        raise StoreError(f"spawn_child: job {parent.id} already has a checkpoint at seq {seq}")
    checked = plan(tb, [job])
    tb.extend_lease(parent, tb.now + lease_ttl)
    apply(tb, checked)
    [result] = checked.results
    rows = tb.checkpoints.setdefault(parent.id, {})
    rows[seq] = Checkpoint(parent.id, seq, name, "spawn", str(result.id), tb.now)
    return result.id


def emit_event(tb: Table, name: str, payload: str | None) -> bool:
    """Set the latch and wake every job waiting for it; False if it was already set."""
    if name in tb.events:
        return False
    tb.events[name] = EventRecord(name, payload, tb.now)
    wake(tb, [f"event:{name}"])
    return True


def emit_from_job(
    tb: Table,
    lease: Lease,
    seq: int,
    name: str,
    event: str,
    payload: str | None,
    lease_ttl: float,
) -> bool | LeaseStatus:
    """A running job's emit: the latch, its waiters and the emit checkpoint, fenced on the
    lease; whether this emit set the latch, or why the lease refused it."""
    job = held(tb, lease)
    if isinstance(job, LeaseStatus):
        return job
    tb.extend_lease(job, tb.now + lease_ttl)
    won = emit_event(tb, event, payload)
    _put(tb, job, seq, name, "emit", "true" if won else "false")
    return won


def get_event(tb: Table, name: str) -> EventRecord | None:
    """The emitted event, or None if nobody emitted it yet."""
    return tb.events.get(name)


def parse_wait_for(wait_for: str) -> tuple[str, str]:
    """Split `event:<name>` or `job:<id>`; raise ValueError for anything else."""
    kind, _, key = wait_for.partition(":")
    if kind == "event":
        return kind, key
    if kind == "job":
        int(key)
        return kind, key
    raise ValueError(f"suspend: unknown wait_for {wait_for!r}; use 'event:<name>' or 'job:<id>'")


def already_happened(tb: Table, wait_for: str, job_id: int) -> bool:
    """True if what job `job_id` is about to wait for has happened already (no lost wake-up).

    Only a job's own children wake it when they end, so waiting for any other job counts as
    happened: the job runs again at once and sees for itself.
    """
    kind, key = parse_wait_for(wait_for)
    if kind == "event":
        return key in tb.events
    row = tb.jobs.get(int(key))
    return row is None or row.state in TERMINAL or row.parent_id != job_id
