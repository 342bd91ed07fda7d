"""The flow-control migration (debounce, throttle, pauses), on a database left by the version
before: an active keyed job stays the holder of its key, a debounced submission queues the next
run beside it once it has started, and the new tables are there."""

from __future__ import annotations

from pathlib import Path

import pytest

from wireframe.store import Duplicate, PostgresStore, SqliteStore, Store, Submitted
from wireframe.store.sql.schema import MIGRATIONS, SCHEMA_VERSION

from migration_support import pg_at_version, read_pg, read_sqlite, sqlite_at_version
from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg
from store_support import job

pytestmark = pytest.mark.anyio

FLOWS_VERSION = next(
    number for number, sql in enumerate(MIGRATIONS, start=1) if "CREATE TABLE paused_flows" in sql
)
"""The number of the migration under test (found by its content: migrations get renumbered)."""

KEY_INDEXES = "('jobs_active_key', 'jobs_waiting_key')"
_RUNNING_KEYED_JOB = (
    "INSERT INTO jobs (type, domain, payload, state, priority, base_priority, key, created_at, "
    "run_at, ready_at, started_at, attempt, max_attempts, retry_budget, on_dep_failure, "
    "fail_fast, lease_expires_at, worker_id) VALUES ('d::t', 'd', '{}', 'running', 0, 0, 'k', "
    "?, ?, ?, ?, 1, 1, 1, 'cancel', 1, ?, 'w') RETURNING id"
)


async def _keys_still_dedup(store: Store, running_id: int) -> None:
    assert await store.submit([job(key="k")]) == [Duplicate(running_id)]
    [debounced] = await store.submit([job(key="k", debounce=5.0)])
    assert isinstance(debounced, Submitted) and debounced.id != running_id
    assert await store.submit([job(key="k", debounce=5.0)]) == [
        Submitted(debounced.id, replaced=True)
    ]
    assert await store.set_paused("domain", "d", True)
    assert [p.name for p in await store.paused()] == ["d"]


async def test_sqlite(tmp_path: Path, clock) -> None:
    path = tmp_path / "old.db"
    now = clock.now
    conn = sqlite_at_version(path, FLOWS_VERSION - 1)
    try:
        running_id = conn.execute(_RUNNING_KEYED_JOB, (now - 10,) * 4 + (now + 60,)).fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    async with SqliteStore(path, clock=clock) as store:
        await _keys_still_dedup(store, running_id)
    versions, rows = read_sqlite(
        path,
        f"SELECT name FROM sqlite_master WHERE name IN {KEY_INDEXES} ORDER BY name",
    )
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert rows == [("jobs_active_key",), ("jobs_waiting_key",)]


@pytest.mark.postgres
async def test_postgres(clock, anyio_backend: str) -> None:
    if anyio_backend != "asyncio":
        pytest.skip("the PostgreSQL store is tested under asyncio")
    import psycopg

    dsn = require_pg()
    schema = new_schema_name("wfmig")
    now = clock.now
    try:
        with psycopg.connect(pg_dsn()) as conn:
            pg_at_version(conn, schema, FLOWS_VERSION - 1)
            sql = _RUNNING_KEYED_JOB.replace("?", "%s")
            running_id = conn.execute(sql, (now - 10,) * 4 + (now + 60,)).fetchone()[0]
        store = PostgresStore(dsn, schema=schema, clock=clock)
        async with store:
            await _keys_still_dedup(store, running_id)
        versions, rows = read_pg(
            dsn,
            schema,
            f"SELECT indexname FROM pg_indexes WHERE indexname IN {KEY_INDEXES} "
            "AND schemaname = current_schema() ORDER BY 1",
        )
        assert versions == list(range(1, SCHEMA_VERSION + 1))
        assert rows == [("jobs_active_key",), ("jobs_waiting_key",)]
    finally:
        drop_schema(schema)
