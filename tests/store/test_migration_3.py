"""Migration 3 (`jobs.has_dependents`) backfills the flag on a database written at version 2.

A job another job already depends on when the database is upgraded must still release its
dependents when it completes: the flag is what tells a completion to look for them.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wireframe.store import JobState, PostgresStore, SqliteStore, Store
from wireframe.store.sql.schema import SCHEMA_VERSION

from migration_support import pg_at_version, read_pg, read_sqlite, sqlite_at_version
from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg
from store_support import claim_ids, claim_one, complete, state

pytestmark = pytest.mark.anyio

# Every NOT NULL column without a default in the version 2 `jobs` table.
_V2_JOB = (
    "INSERT INTO jobs (type, domain, payload, state, priority, base_priority, created_at, "
    "run_at, ready_at, max_attempts, retry_budget, on_dep_failure, fail_fast) "
    "VALUES (?, ?, '{}', ?, ?, ?, ?, ?, ?, 1, 1, 'cancel', 1) RETURNING id"
)


def _v2_rows(now: float) -> list[tuple[object, ...]]:
    """A (pending), B (blocked, on A: the edge is added separately) and C (pending, with a
    higher priority than A so that it is claimed first)."""
    t = now - 10
    return [
        ("a::t", "a", "pending", 10, 10, t, t, t),
        ("b::t", "b", "blocked", 10, 10, t, t, t),
        ("a::t", "a", "pending", 20, 20, t, t, t),
    ]


def _v2_sqlite(path: Path, now: float) -> tuple[int, int, int]:
    """A SQLite file at schema version 2 holding `_v2_rows` and B's dependency on A."""
    conn = sqlite_at_version(path, 2)
    try:
        a, b, c = (conn.execute(_V2_JOB, row).fetchone()[0] for row in _v2_rows(now))
        conn.execute("INSERT INTO job_deps (job_id, dep_id) VALUES (?, ?)", (b, a))
        conn.execute("COMMIT")
        assert "has_dependents" not in {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    finally:
        conn.close()
    return a, b, c


async def _check_upgraded_store(store: Store, a: int, b: int, c: int) -> None:
    """B stays blocked until A completes; C (nothing depends on it) completes on its own."""
    assert await state(store, b) is JobState.BLOCKED
    record = await store.get(b)
    assert record is not None and record.depends_on == (a,)
    assert await claim_ids(store, domains=("b",)) == []
    claimed = await claim_one(store, c, domains=("a",), limit=1)
    assert await complete(store, claimed.lease)
    assert await state(store, b) is JobState.BLOCKED
    claimed = await claim_one(store, a, domains=("a",), limit=1)
    assert await complete(store, claimed.lease)
    record = await store.get(b)
    assert record is not None
    assert record.state is JobState.PENDING and record.depends_on == ()
    assert await claim_ids(store, domains=("b",)) == [b]


async def test_sqlite_migration_3_backfills_has_dependents(tmp_path: Path, clock) -> None:
    path = tmp_path / "v2.db"
    a, b, c = _v2_sqlite(path, clock.now)
    async with SqliteStore(path, clock=clock):
        pass
    versions, rows = read_sqlite(path, "SELECT id, has_dependents FROM jobs")
    flags = dict(rows)
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert flags == {a: 1, b: 0, c: 0}
    async with SqliteStore(path, clock=clock) as store:
        await _check_upgraded_store(store, a, b, c)


@pytest.mark.postgres
async def test_postgres_migration_3_backfills_has_dependents(clock) -> None:
    import psycopg

    dsn = require_pg()
    name = new_schema_name()
    try:
        with psycopg.connect(pg_dsn()) as conn:
            pg_at_version(conn, name, 2)
            sql = _V2_JOB.replace("?", "%s")
            a, b, c = (conn.execute(sql, row).fetchone()[0] for row in _v2_rows(clock.now))
            conn.execute("INSERT INTO job_deps (job_id, dep_id) VALUES (%s, %s)", (b, a))
        store = PostgresStore(dsn, schema=name, clock=clock, pool_size=2)
        await store.open()
        try:
            versions, rows = read_pg(pg_dsn(), name, "SELECT id, has_dependents FROM jobs")
            flags = dict(rows)
            assert versions == list(range(1, SCHEMA_VERSION + 1))
            assert flags == {a: 1, b: 0, c: 0}
            await _check_upgraded_store(store, a, b, c)
        finally:
            await store.close()
    finally:
        drop_schema(name)
