"""Migration 4 (`jobs.deps`) backfills what jobs written at version 3 wait on.

A blocked job keeps its dependencies from its edges; a job that already ended because of a
dependency keeps the one its error names. Retrying either after the upgrade re-checks them
instead of running the job without its dependencies.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from wireframe.store import InvalidTransitionError, JobState, PostgresStore, SqliteStore, Store
from wireframe.store.sql.schema import SCHEMA_VERSION

from migration_support import pg_at_version, read_pg, read_sqlite, sqlite_at_version
from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg
from store_support import claim_ids, run, state

pytestmark = pytest.mark.anyio

# Every NOT NULL column without a default in the version 3 `jobs` table, and how it ended.
_V3_JOB = (
    "INSERT INTO jobs (type, domain, payload, state, priority, base_priority, created_at, "
    "run_at, ready_at, max_attempts, retry_budget, on_dep_failure, fail_fast, finished_at, "
    "error) VALUES (?, ?, '{}', ?, 10, 10, ?, ?, ?, 1, 1, 'fail', 1, ?, ?) RETURNING id"
)

Jobs = dict[str, int]


def _v3_jobs(
    insert: Callable[[tuple[object, ...]], int], edge: Callable[[int, int], None], now: float
) -> Jobs:
    """A failed; B ended dependency_failed because of A (its edge is gone); C pending; D
    blocked on C; E cancelled by an operator while blocked (no error names a dependency)."""
    t = now - 10

    def job(type_: str, state: str, error: str | None = None) -> int:
        ended = t if state in ("failed", "dependency_failed", "cancelled") else None
        return insert((type_, type_.split("::")[0], state, t, t, t, ended, error))

    jobs: Jobs = {"a": job("a::t", "failed", "boom")}
    jobs["b"] = job("b::t", "dependency_failed", f"dependency job {jobs['a']} ended as failed")
    jobs["c"] = job("a::t", "pending")
    jobs["d"] = job("b::t", "blocked")
    edge(jobs["d"], jobs["c"])
    jobs["e"] = job("b::t", "cancelled")
    return jobs


def _expected_deps(jobs: Jobs) -> dict[int, list[int] | None]:
    return {
        jobs["a"]: None,
        jobs["b"]: [jobs["a"]],
        jobs["c"]: None,
        jobs["d"]: [jobs["c"]],
        jobs["e"]: None,
    }


def _decode(rows: list[tuple[int, str | None]]) -> dict[int, list[int] | None]:
    return {job_id: None if deps is None else json.loads(deps) for job_id, deps in rows}


async def _check_upgraded_store(store: Store, jobs: Jobs) -> None:
    """B is not retried while A has failed; once A is retried, B waits for it. D, cancelled
    after the upgrade, waits for C again when retried. E retries to pending."""
    a, b, c, d, e = (jobs[k] for k in "abcde")
    with pytest.raises(InvalidTransitionError, match=rf"job {b} depends on job {a} \(failed\)"):
        await store.retry(b)
    assert await store.cancel(d) is JobState.CANCELLED
    await store.retry(d)
    record = await store.get(d)
    assert record is not None and record.state is JobState.BLOCKED and record.depends_on == (c,)
    await run(store, c, domains=("a",))
    assert await state(store, d) is JobState.PENDING
    await store.retry(a)
    await store.retry(b)
    assert await state(store, b) is JobState.BLOCKED
    await run(store, a, domains=("a",))
    await store.retry(e)
    assert await claim_ids(store, domains=("b",)) == [b, d, e]


async def test_sqlite_migration_4_backfills_deps(tmp_path: Path, clock) -> None:
    path = tmp_path / "v3.db"
    conn = sqlite_at_version(path, 3)
    try:
        jobs = _v3_jobs(
            lambda row: conn.execute(_V3_JOB, row).fetchone()[0],
            lambda job_id, dep: conn.execute(
                "INSERT INTO job_deps (job_id, dep_id) VALUES (?, ?)", (job_id, dep)
            ),
            clock.now,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    async with SqliteStore(path, clock=clock):
        pass
    versions, rows = read_sqlite(path, "SELECT id, deps FROM jobs")
    deps = _decode(rows)
    assert versions == list(range(1, SCHEMA_VERSION + 1))
    assert deps == _expected_deps(jobs)
    async with SqliteStore(path, clock=clock) as store:
        await _check_upgraded_store(store, jobs)


@pytest.mark.postgres
async def test_postgres_migration_4_backfills_deps(clock) -> None:
    import psycopg

    dsn = require_pg()
    name = new_schema_name()
    try:
        with psycopg.connect(pg_dsn()) as conn:
            pg_at_version(conn, name, 3)
            sql = _V3_JOB.replace("?", "%s")
            jobs = _v3_jobs(
                lambda row: conn.execute(sql, row).fetchone()[0],  # type: ignore[index]
                lambda job_id, dep: conn.execute(
                    "INSERT INTO job_deps (job_id, dep_id) VALUES (%s, %s)", (job_id, dep)
                ),
                clock.now,
            )
        store = PostgresStore(dsn, schema=name, clock=clock, pool_size=2)
        await store.open()
        try:
            versions, rows = read_pg(pg_dsn(), name, "SELECT id, deps FROM jobs")
            deps = _decode(rows)
            assert versions == list(range(1, SCHEMA_VERSION + 1))
            assert deps == _expected_deps(jobs)
            await _check_upgraded_store(store, jobs)
        finally:
            await store.close()
    finally:
        drop_schema(name)
