"""Migration 8, on a file left by version 7 with a started job stranded past its ttl.

Before 8, a claim skipped a pending job past its ttl while expiry skipped it for having
started: a job that had started, then waited (a retry, a durable sleep, a lost worker) past its
ttl stayed pending for ever. 8 clears the ttl of every started job, so that one runs again; an
unstarted job keeps its ttl. Every job gets the reclaim columns: none so far, 3 allowed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wireframe.store import PostgresStore, SqliteStore, Store
from wireframe.store.sql.schema import SCHEMA_VERSION

from migration_support import pg_at_version, read_pg, read_sqlite, sqlite_at_version
from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg
from store_support import claim

pytestmark = pytest.mark.anyio

_V7_JOB = (
    "INSERT INTO jobs (type, domain, payload, state, priority, base_priority, created_at, "
    "run_at, ready_at, max_attempts, retry_budget, on_dep_failure, fail_fast, attempt, "
    "started_at, expires_at, new_attempt) "
    "VALUES ('d::t', 'd', '{}', 'pending', 10, 10, ?, ?, ?, 2, 2, 'cancel', 1, ?, ?, ?, 1) "
    "RETURNING id"
)
_READ = "SELECT id, expires_at, reclaims, max_reclaims FROM jobs ORDER BY id"


def _rows(now: float) -> list[tuple[object, ...]]:
    """A job that started, failed and waited for its retry past its ttl; one never started."""
    t = now - 100
    return [(t, t, t, 1, t, now - 50), (t, t, t, 0, None, now + 50)]


async def _runs_again(store: Store, stranded: int, unstarted: int, now: float) -> None:
    claimed = await claim(store)
    assert [(j.id, j.attempt, j.expires_at) for j in claimed] == [
        (stranded, 2, None),
        (unstarted, 1, None),
    ]
    assert {(j.reclaims, j.max_reclaims) for j in claimed} == {(0, 3)}


async def test_sqlite_migration_8_frees_started_jobs_stranded_past_their_ttl(
    tmp_path: Path, clock
) -> None:
    path = tmp_path / "v7.db"
    conn = sqlite_at_version(path, 7)
    try:
        stranded, unstarted = (conn.execute(_V7_JOB, r).fetchone()[0] for r in _rows(clock.now))
        conn.execute("COMMIT")
    finally:
        conn.close()
    async with SqliteStore(path, clock=clock) as store:
        versions, rows = read_sqlite(path, _READ)
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        assert rows == [(stranded, None, 0, 3), (unstarted, clock.now + 50, 0, 3)]
        await _runs_again(store, stranded, unstarted, clock.now)


@pytest.mark.postgres
async def test_postgres_migration_8_frees_started_jobs_stranded_past_their_ttl(clock) -> None:
    import psycopg

    dsn = require_pg()
    name = new_schema_name()
    try:
        with psycopg.connect(pg_dsn()) as conn:
            pg_at_version(conn, name, 7)
            ids = []
            for r in _rows(clock.now):
                row = conn.execute(_V7_JOB.replace("?", "%s"), r).fetchone()
                assert row is not None
                ids.append(int(row[0]))
        stranded, unstarted = ids
        store = PostgresStore(dsn, schema=name, clock=clock, pool_size=2)
        await store.open()
        try:
            versions, rows = read_pg(pg_dsn(), name, _READ)
            assert versions == list(range(1, SCHEMA_VERSION + 1))
            assert rows == [(stranded, None, 0, 3), (unstarted, clock.now + 50, 0, 3)]
            await _runs_again(store, stranded, unstarted, clock.now)
        finally:
            await store.close()
    finally:
        drop_schema(name)
