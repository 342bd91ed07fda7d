"""Mapping between job rows and records, and the small SQL helpers every module shares."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

import attrs

from wireframe.store.records import JobRecord, JobState
from wireframe.store.sql.tx import Tx

TERMINAL = ("completed", "failed", "cancelled", "expired", "dependency_failed")
TERMINAL_SQL = "('completed','failed','cancelled','expired','dependency_failed')"

JOB_COLUMNS = (
    "id, type, domain, payload, state, priority, base_priority, key, parent_id, tags, resources, "
    "created_at, run_at, started_at, finished_at, expires_at, attempt, max_attempts, claim_seq, "
    "worker_id, lease_expires_at, result, error, traceback, reason, progress, progress_message, "
    "on_dep_failure, fail_fast, phase, active_children, cancel_requested, pause_requested, "
    "schedule_id, wait_for, reclaims, max_reclaims, ready_at, meta, flow_key, key_cap"
)


_STATES: dict[str, JobState] = {state.value: state for state in JobState}
_TAGS, _RESOURCES, _FAIL_FAST, _CANCEL, _PAUSE, _META = 9, 10, 28, 31, 32, 38


def job_from_row(row: Sequence[Any], depends_on: tuple[int, ...] = ()) -> JobRecord:
    """Build a JobRecord from a row selected with JOB_COLUMNS (the fields, in order)."""
    fields: list[Any] = list(row)
    fields[4] = _STATES[fields[4]]
    tags, resources = fields[_TAGS], fields[_RESOURCES]
    fields[_TAGS] = tuple(json.loads(tags)) if tags else ()
    fields[_RESOURCES] = json.loads(resources) if resources else {}
    fields[_FAIL_FAST] = bool(fields[_FAIL_FAST])
    fields[_CANCEL] = bool(fields[_CANCEL])
    fields[_PAUSE] = bool(fields[_PAUSE])
    meta = fields[_META]
    fields[_META] = json.loads(meta) if meta else {}
    fields.append(depends_on)
    return JobRecord(*fields)


def chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    """Split `items` so that `IN (...)` lists stay under SQLite's variable limit."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def placeholders(n: int) -> str:
    """`?,?,?` for n parameters."""
    return ",".join("?" * n)


def select_jobs(tx: Tx, ids: Iterable[int]) -> dict[int, JobRecord]:
    """Fetch the rows of `ids` as records, keyed by id."""
    wanted = list(ids)
    found: dict[int, JobRecord] = {}
    for part in chunks(wanted):
        sql = f"SELECT {JOB_COLUMNS} FROM jobs WHERE id IN ({placeholders(len(part))})"
        for row in tx.execute(sql, tuple(part)):
            found[row[0]] = job_from_row(row)
    return found


@attrs.frozen
class Ended:
    """A job that has just become terminal and whose consequences still have to be settled."""

    id: int
    state: str
    parent_id: int | None
    active_children: int
    error: str | None
    cascade: bool = True
    """Whether its dependents are resolved (a job the "fail" policy failed does not cascade)."""
    blocked_on: bool = True
    """Whether it may still hold dependency edges (a job that ran had none left)."""
    dependents: bool = True
    """Whether other jobs may depend on it (False only when its row says none ever did)."""


def ended_from(job: JobRecord, state: str, error: str | None = None) -> Ended:
    """Describe `job` as having just ended in `state`."""
    return Ended(job.id, state, job.parent_id, job.active_children, error or job.error)


def as_int(value: object) -> int:
    """Narrow a value read from SQLite to int."""
    return int(cast(int, value))
