"""Read-only queries: one job, listings, counts, the oldest waits (attempts: `sql.attempts`)."""

from __future__ import annotations

from collections.abc import Sequence

from wireframe.store.records import JobRecord, JobState
from wireframe.store.sql.rows import JOB_COLUMNS, job_from_row, placeholders
from wireframe.store.sql.tx import Tx


def get(tx: Tx, job_id: int) -> JobRecord | None:
    """One job with its outstanding dependencies, or None."""
    row = tx.execute(f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    deps = tuple(
        r[0]
        for r in tx.execute(
            "SELECT dep_id FROM job_deps WHERE job_id = ? ORDER BY dep_id", (job_id,)
        )
    )
    return job_from_row(row, deps)


def list_jobs(
    tx: Tx,
    *,
    states: Sequence[JobState] = (),
    domain: str | None = None,
    type: str | None = None,
    parent_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = False,
) -> list[JobRecord]:
    """Jobs matching every given filter, by id."""
    clauses: list[str] = []
    params: list[object] = []
    if states:
        clauses.append(f"state IN ({placeholders(len(states))})")
        params.extend(str(s) for s in states)
    for column, value in (("domain", domain), ("type", type), ("parent_id", parent_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "DESC" if newest_first else "ASC"
    sql = f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY id {order} LIMIT ? OFFSET ?"
    return [job_from_row(r) for r in tx.execute(sql, (*params, limit, offset))]


def counts(tx: Tx) -> dict[tuple[str, str, JobState], int]:
    """How many jobs there are per (domain, type, state)."""
    return {
        (domain, type_, JobState(state)): n
        for domain, type_, state, n in tx.execute(
            "SELECT domain, type, state, count(*) FROM jobs GROUP BY domain, type, state"
        )
    }


def oldest_pending(tx: Tx, now: float) -> dict[str, float]:
    """Per domain, how long its longest-waiting ready job has waited (seconds).

    Pending jobs wait since their `ready_at` (read through `jobs_pending`, the index of pending
    jobs); scheduled and suspended jobs already due but not yet woken (no worker has claimed
    since) wait since their `run_at` (read through `jobs_due`, whose condition this repeats).
    """
    since: dict[str, float] = {}
    pending = "SELECT domain, min(ready_at) FROM jobs WHERE state = 'pending' GROUP BY domain"
    overdue = (
        "SELECT domain, min(run_at) FROM jobs WHERE state IN ('scheduled', 'suspended') "
        "AND run_at <= ? GROUP BY domain"
    )
    for domain, at in [*tx.execute(pending), *tx.execute(overdue, (now,))]:
        since[domain] = min(float(at), since.get(domain, float(at)))
    return {domain: max(0.0, now - at) for domain, at in since.items()}
