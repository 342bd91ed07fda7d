"""A job's metadata (`meta`, str to str) is stored with it on every store: shown by get, list
and claim, kept by a retry, by a bulk submit and by every occurrence of a recurring schedule;
SQL stores add its column with migration 16 and the jobs already stored read as having none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wireframe.store import NewSchedule, PostgresStore, SqliteStore, Store, Submitted
from wireframe.store.sql.schema import SCHEMA_VERSION

from migration_support import pg_at_version, read_pg, read_sqlite, sqlite_at_version
from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg
from store_support import claim, claim_one, fail, job

pytestmark = pytest.mark.anyio

META = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "t": "a"}


async def test_meta_is_stored_read_and_kept_by_a_retry(store: Store) -> None:
    [plain, tagged] = await store.submit([job(), job(meta=META, max_attempts=2)])
    assert isinstance(tagged, Submitted)
    got = await store.get(tagged.id)
    assert got is not None and got.meta == META
    assert (await store.get(plain.id)).meta == {}  # type: ignore[union-attr]
    listed = {j.id: j.meta for j in await store.list_jobs()}
    assert listed == {plain.id: {}, tagged.id: META}
    claimed = {j.id: j for j in await claim(store)}
    assert claimed[tagged.id].meta == META
    assert await fail(store, claimed[tagged.id].lease, retry_at=0.0)
    again = await claim_one(store, tagged.id)
    assert again.attempt == 2 and again.meta == META


async def test_records_do_not_share_the_stored_meta(store: Store) -> None:
    given = dict(META)
    [sub] = await store.submit([job(meta=given)])
    given["t"] = "changed by the caller"
    first = await store.get(sub.id)
    assert first is not None and first.meta == META
    first.meta["t"] = "changed by a reader"  # type: ignore[index]
    assert (await store.get(sub.id)).meta == META  # type: ignore[union-attr]


async def test_a_bulk_submit_keeps_each_jobs_meta(store: Store) -> None:
    jobs = [job(payload=json.dumps({"n": i}), meta={"i": str(i)}) for i in range(20)]
    uniform = [job(payload=json.dumps({"n": i}), meta=META) for i in range(20)]
    results = await store.submit(jobs) + await store.submit(uniform)
    records = {j.id: j.meta for j in await store.list_jobs(limit=100)}
    assert [records[r.id] for r in results] == [{"i": str(i)} for i in range(20)] + [META] * 20


async def test_every_occurrence_of_a_schedule_carries_the_meta(store: Store, clock) -> None:
    schedule = NewSchedule('{"every": 60}', clock.now + 60, None, "allow")
    [sub] = await store.submit([job(recurring=schedule, meta=META)])
    assert isinstance(sub, Submitted) and sub.schedule_id is not None
    clock.advance(60)
    fired = await store.fire_schedule(sub.schedule_id, clock.now, clock.now + 60)
    assert fired is not None and fired.job_id is not None and fired.job_id != sub.id
    occurrence = await store.get(fired.job_id)
    assert occurrence is not None and occurrence.meta == META


_V15_JOB = (
    "INSERT INTO jobs (type, domain, payload, state, priority, base_priority, created_at, "
    "run_at, ready_at, max_attempts, retry_budget, on_dep_failure, fail_fast) "
    "VALUES ('d::t', 'd', '{}', 'pending', 0, 0, 1, 1, 1, 1, 1, 'cancel', 1) RETURNING id"
)


async def test_sqlite_migration_16_adds_meta(tmp_path: Path) -> None:
    path = tmp_path / "v15.db"
    conn = sqlite_at_version(path, 15)
    try:
        old = conn.execute(_V15_JOB).fetchone()[0]
        conn.execute("COMMIT")
    finally:
        conn.close()
    async with SqliteStore(path) as store:
        versions, rows = read_sqlite(path, "SELECT id, meta FROM jobs")
        assert versions == list(range(1, SCHEMA_VERSION + 1)) and rows == [(old, None)]
        assert (await store.get(old)).meta == {}  # type: ignore[union-attr]
        [new] = await store.submit([job(meta=META)])
        assert (await store.get(new.id)).meta == META  # type: ignore[union-attr]


@pytest.mark.postgres
async def test_postgres_migration_16_adds_meta() -> None:
    import psycopg

    dsn = require_pg()
    name = new_schema_name()
    try:
        with psycopg.connect(pg_dsn()) as conn:
            pg_at_version(conn, name, 15)
            row = conn.execute(_V15_JOB).fetchone()
            assert row is not None
            old = int(row[0])
        store = PostgresStore(dsn, schema=name, pool_size=2)
        await store.open()
        try:
            versions, rows = read_pg(pg_dsn(), name, "SELECT id, meta FROM jobs")
            assert versions == list(range(1, SCHEMA_VERSION + 1)) and rows == [(old, None)]
            assert (await store.get(old)).meta == {}  # type: ignore[union-attr]
            [new] = await store.submit([job(meta=META)])
            assert (await store.get(new.id)).meta == META  # type: ignore[union-attr]
        finally:
            await store.close()
    finally:
        drop_schema(name)
