"""The migration that gives schedules an overlap policy, on a database left by the version before.

A schedule created before it takes the default policy, skip, with no skipped firings yet; its
next firing while its last run is still running is skipped and counted (before, it submitted a
second run beside the first).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wireframe.store import Fired, Overlap, PostgresStore, SqliteStore, Store
from wireframe.store.sql.schema import MIGRATIONS, SCHEMA_VERSION

from migration_support import pg_at_version, read_pg, read_sqlite, sqlite_at_version
from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg

pytestmark = pytest.mark.anyio

OVERLAP_VERSION = next(
    number for number, sql in enumerate(MIGRATIONS, start=1) if "ADD COLUMN overlap" in sql
)
"""The number of the migration under test (found by its content: migrations get renumbered)."""

_RUNNING_JOB = (
    "INSERT INTO jobs (type, domain, payload, state, priority, base_priority, created_at, "
    "run_at, ready_at, started_at, attempt, max_attempts, retry_budget, on_dep_failure, "
    "fail_fast) VALUES ('d::t', 'd', '{}', 'running', 0, 0, ?, ?, ?, ?, 1, 1, 1, 'cancel', 1) "
    "RETURNING id"
)
_SCHEDULE = (
    "INSERT INTO schedules (type, domain, template, spec, state, next_run_at, occurrences, "
    "max_occurrences, last_job_id, created_at) "
    "VALUES ('d::t', 'd', '{}', '{}', 'active', ?, 1, NULL, ?, ?) RETURNING id"
)
_READ = "SELECT id, overlap, skipped, last_skipped_at FROM schedules"


async def _skips_while_running(store: Store, schedule_id: int, job_id: int, due: float) -> None:
    schedule = await store.get_schedule(schedule_id)
    assert schedule is not None
    assert (schedule.overlap, schedule.skipped, schedule.last_skipped_at) == (Overlap.SKIP, 0, None)
    assert await store.fire_schedule(schedule_id, due, due + 60) == Fired(None, True, job_id)
    schedule = await store.get_schedule(schedule_id)
    assert schedule is not None and (schedule.skipped, schedule.last_skipped_at) == (1, due)
    assert len(await store.list_jobs()) == 1


async def test_sqlite_schedules_get_the_skip_policy(tmp_path: Path, clock) -> None:
    path = tmp_path / "old.db"
    now = clock.now
    conn = sqlite_at_version(path, OVERLAP_VERSION - 1)
    try:
        job_id = conn.execute(_RUNNING_JOB, (now - 10,) * 4).fetchone()[0]
        schedule_id = conn.execute(_SCHEDULE, (now, job_id, now - 10)).fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    async with SqliteStore(path, clock=clock) as store:
        versions, rows = read_sqlite(path, _READ)
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        assert rows == [(schedule_id, "skip", 0, None)]
        await _skips_while_running(store, schedule_id, job_id, now)


@pytest.mark.postgres
async def test_postgres_schedules_get_the_skip_policy(clock, anyio_backend: str) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("the PostgreSQL store is tested under asyncio")
    import psycopg

    dsn = require_pg()
    name = new_schema_name()
    now = clock.now
    try:
        with psycopg.connect(pg_dsn()) as conn:
            pg_at_version(conn, name, OVERLAP_VERSION - 1)
            row = conn.execute(_RUNNING_JOB.replace("?", "%s"), (now - 10,) * 4).fetchone()
            assert row is not None
            job_id = int(row[0])
            row = conn.execute(_SCHEDULE.replace("?", "%s"), (now, job_id, now - 10)).fetchone()
            assert row is not None
            schedule_id = int(row[0])
        async with PostgresStore(dsn, schema=name, clock=clock, pool_size=2) as store:
            versions, rows = read_pg(pg_dsn(), name, _READ)
            assert versions == list(range(1, SCHEMA_VERSION + 1))
            assert rows == [(schedule_id, "skip", 0, None)]
            await _skips_while_running(store, schedule_id, job_id, now)
    finally:
        drop_schema(name)
