"""The job types workers record: one row per type, replaced by each new record of it."""

from __future__ import annotations

from wireframe.store.records import JobTypeRecord, NewJobType
from wireframe.store.sql.tx import Tx

COLUMNS = "type, domain, name, payload, settings, recorded_by, recorded_at"


def record(tx: Tx, now: float, job_types: list[NewJobType]) -> None:
    """Insert or replace each job type's record, stamped `now`; in the order of their names,
    so two workers recording overlapping sets lock the rows in one order (no deadlock)."""
    for t in sorted(job_types, key=lambda t: t.type):
        tx.execute(
            f"INSERT INTO job_types ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (type) DO UPDATE SET domain = excluded.domain, name = excluded.name, "
            "payload = excluded.payload, settings = excluded.settings, "
            "recorded_by = excluded.recorded_by, recorded_at = excluded.recorded_at",
            (t.type, t.domain, t.name, t.payload, t.settings, t.recorded_by, now),
        )


def list_all(tx: Tx) -> list[JobTypeRecord]:
    """Every recorded job type, by type."""
    return [
        JobTypeRecord(*row) for row in tx.execute(f"SELECT {COLUMNS} FROM job_types ORDER BY type")
    ]
