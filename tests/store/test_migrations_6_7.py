"""Migrations 6 and 7, on a job running when the file was upgraded from version 5.

6 rebuilds the index of leases on the lease column: the job is still found by it, and taken
back once its lease has expired. 7 writes attempt rows when attempts end: the job's open row,
from before the upgrade, still shows as its running attempt and is closed, not doubled.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wireframe.store import JobState, PostgresStore, SqliteStore, Store
from wireframe.store.sql.schema import SCHEMA_VERSION

from migration_support import pg_at_version, read_pg, read_sqlite, sqlite_at_version
from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg
from store_support import state

pytestmark = pytest.mark.anyio

# A job running on a worker that died, its lease expired 5 s before "now" (10 s after it began).
_V5_RUNNING = (
    "INSERT INTO jobs (type, domain, payload, state, priority, base_priority, created_at, "
    "run_at, ready_at, max_attempts, retry_budget, on_dep_failure, fail_fast, attempt, "
    "started_at, worker_id, lease_expires_at, claim_seq) "
    "VALUES ('a::t', 'a', '{}', 'running', 10, 10, ?, ?, ?, 3, 3, 'fail', 1, 1, ?, 'gone', ?, 1) "
    "RETURNING id"
)
_V5_ATTEMPT = (
    "INSERT INTO attempts (job_id, attempt, worker_id, started_at) VALUES (?, 1, 'gone', ?)"
)
_LEASE_INDEX = "lease_expires_at IS NOT NULL"


def _row(now: float) -> tuple[float, ...]:
    t = now - 15
    return (t, t, t, t, now - 5)


async def _reclaimed(store: Store, job_id: int, now: float) -> None:
    running = await store.attempts(job_id)
    assert [(a.attempt, a.worker_id, a.started_at, a.outcome) for a in running] == [
        (1, "gone", now - 15, None)
    ]
    assert await store.housekeep() is True
    assert await state(store, job_id) is JobState.PENDING
    attempts = await store.attempts(job_id)
    assert [(a.attempt, a.started_at, a.outcome) for a in attempts] == [
        (1, now - 15, "lease_expired")
    ]


async def test_sqlite_migration_6_keeps_running_jobs_reclaimable(tmp_path: Path, clock) -> None:
    path = tmp_path / "v5.db"
    conn = sqlite_at_version(path, 5)
    try:
        job_id = conn.execute(_V5_RUNNING, _row(clock.now)).fetchone()[0]
        conn.execute(_V5_ATTEMPT, (job_id, clock.now - 15))
        conn.execute("COMMIT")
    finally:
        conn.close()
    async with SqliteStore(path, clock=clock) as store:
        versions, rows = read_sqlite(
            path, "SELECT sql FROM sqlite_master WHERE name = 'jobs_lease'"
        )
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        assert _LEASE_INDEX in rows[0][0]
        await _reclaimed(store, job_id, clock.now)


@pytest.mark.postgres
async def test_postgres_migration_6_keeps_running_jobs_reclaimable(clock) -> None:
    import psycopg

    dsn = require_pg()
    name = new_schema_name()
    try:
        with psycopg.connect(pg_dsn()) as conn:
            pg_at_version(conn, name, 5)
            row = conn.execute(_V5_RUNNING.replace("?", "%s"), _row(clock.now)).fetchone()
            assert row is not None
            job_id = int(row[0])
            conn.execute(_V5_ATTEMPT.replace("?", "%s"), (job_id, clock.now - 15))
        store = PostgresStore(dsn, schema=name, clock=clock, pool_size=2)
        await store.open()
        try:
            versions, rows = read_pg(
                pg_dsn(),
                name,
                "SELECT indexdef FROM pg_indexes "
                "WHERE schemaname = current_schema() AND indexname = 'jobs_lease'",
            )
            assert versions == list(range(1, SCHEMA_VERSION + 1))
            assert _LEASE_INDEX in rows[0][0]
            await _reclaimed(store, job_id, clock.now)
        finally:
            await store.close()
    finally:
        drop_schema(name)
