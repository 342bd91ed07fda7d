"""Attempt rows: written once, when an attempt ends; the running attempt is read off its job.

A claim does not insert a row for the attempt it starts: the job row holds what it would say
(`attempt`, `worker_id`, `attempt_started_at`), and `attempts()` shows it from there while the
job runs. The attempt's row is written when it ends (completed, failed, released, its lease
expired). An attempt that ended without spending its number (preempted, paused, a worker shut
down) is claimed again under the same number: its row keeps its first start time and is
reopened, while running, with the new worker.
"""

from __future__ import annotations

from wireframe.store.records import AttemptRecord
from wireframe.store.sql.tx import Bulk, Tx, unnest

_COLUMNS = "job_id, attempt, worker_id, started_at, finished_at, outcome, error"
_UPSERT = (
    "ON CONFLICT (job_id, attempt) DO UPDATE SET worker_id = excluded.worker_id, "
    "finished_at = excluded.finished_at, outcome = excluded.outcome, error = excluded.error"
)

CLOSE_ATTEMPT = Bulk(
    f"INSERT INTO attempts ({_COLUMNS}) VALUES (?1, ?2, ?3, coalesce(?4, ?5), ?5, ?6, ?7) "
    f"{_UPSERT}",
    f"INSERT INTO attempts ({_COLUMNS}) SELECT j, a, w, coalesce(s, f), f, o, e FROM "
    f"{unnest('bigint', 'int', 'text', 'float8', 'float8', 'text', 'text')} "
    f"AS v(j, a, w, s, f, o, e) {_UPSERT}",
)
"""Record how an attempt ended: rows of (job id, attempt, worker, started at, finished at,
outcome, error); a row the attempt already has (it was released and claimed again) is updated,
keeping its first start time."""

UPSERT = _UPSERT
"""The conflict clause of `CLOSE_ATTEMPT`, for statements that write attempt rows themselves."""


def attempts(tx: Tx, job_id: int) -> list[AttemptRecord]:
    """Every attempt of a job, first to last, the running one included."""
    records = [
        AttemptRecord(*row)
        for row in tx.execute(
            f"SELECT {_COLUMNS} FROM attempts WHERE job_id = ? ORDER BY attempt", (job_id,)
        )
    ]
    job = tx.execute(
        "SELECT attempt, worker_id, coalesce(attempt_started_at, started_at) FROM jobs "
        "WHERE id = ? AND state = 'running'",
        (job_id,),
    ).fetchone()
    if job is None:
        return records
    number, worker, started = job
    if records and records[-1].attempt == number:
        # Claimed again under the number of an attempt that was released: reopened.
        started = records.pop().started_at
    records.append(AttemptRecord(job_id, number, worker, started, None, None, None))
    return records
