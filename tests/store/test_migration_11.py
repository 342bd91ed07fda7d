"""Migration 11, on a file left by version 10 with pending jobs, one of them raised by aging.

Before 11, aging moved `ready_at` to the time of each raise. 11 gives aging its own column,
`aged_at`: a pending job aging had raised takes its `ready_at` there (the time of its last
raise, so its next raise still waits a full interval); the others have none. From then on
aging leaves `ready_at` alone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wireframe.store import PostgresStore, SqliteStore, Store
from wireframe.store.sql.schema import SCHEMA_VERSION

from migration_support import pg_at_version, read_pg, read_sqlite, sqlite_at_version
from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg

pytestmark = pytest.mark.anyio

_V10_JOB = (
    "INSERT INTO jobs (type, domain, payload, state, priority, base_priority, created_at, "
    "run_at, ready_at, max_attempts, retry_budget, on_dep_failure, fail_fast) "
    "VALUES ('d::t', 'd', '{}', 'pending', ?, 0, ?, ?, ?, 1, 1, 'cancel', 1) RETURNING id"
)
_READ = "SELECT id, ready_at, aged_at FROM jobs ORDER BY id"


def _rows(now: float) -> list[tuple[object, ...]]:
    """(priority, created_at, run_at, ready_at): raised once, 30 s ago; never raised."""
    t = now - 100
    return [(5, t, t, now - 30), (0, t, t, t)]


async def _ages_on(store: Store, raised: int, plain: int, now: float) -> None:
    """The raised job waits a full interval after its last raise; `ready_at` stays put."""
    assert await store.age(older_than=60, step=5, cap=50) == 1
    record = await store.get(plain)
    assert record is not None and (record.priority, record.ready_at) == (5, now - 100)
    raised_record = await store.get(raised)
    assert raised_record is not None and raised_record.priority == 5


async def test_sqlite_migration_11_gives_aging_its_own_column(tmp_path: Path, clock) -> None:
    path = tmp_path / "v10.db"
    conn = sqlite_at_version(path, 10)
    try:
        raised, plain = (conn.execute(_V10_JOB, r).fetchone()[0] for r in _rows(clock.now))
        conn.execute("COMMIT")
    finally:
        conn.close()
    async with SqliteStore(path, clock=clock) as store:
        versions, rows = read_sqlite(path, _READ)
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        now = clock.now
        assert rows == [(raised, now - 30, now - 30), (plain, now - 100, None)]
        await _ages_on(store, raised, plain, now)


@pytest.mark.postgres
async def test_postgres_migration_11_gives_aging_its_own_column(clock) -> None:
    import psycopg

    dsn = require_pg()
    name = new_schema_name()
    try:
        with psycopg.connect(pg_dsn()) as conn:
            pg_at_version(conn, name, 10)
            ids = []
            for r in _rows(clock.now):
                row = conn.execute(_V10_JOB.replace("?", "%s"), r).fetchone()
                assert row is not None
                ids.append(int(row[0]))
        raised, plain = ids
        store = PostgresStore(dsn, schema=name, clock=clock, pool_size=2)
        await store.open()
        try:
            versions, rows = read_pg(pg_dsn(), name, _READ)
            assert versions == list(range(1, SCHEMA_VERSION + 1))
            now = clock.now
            assert rows == [(raised, now - 30, now - 30), (plain, now - 100, None)]
            await _ages_on(store, raised, plain, now)
        finally:
            await store.close()
    finally:
        drop_schema(name)
