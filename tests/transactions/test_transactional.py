"""Transactional enqueue and exactly-once database effects, on SQLite and PostgreSQL.

`submit(..., connection=conn)` writes the job in the application's transaction: it exists
exactly when that transaction commits. `ctx.transaction()` commits the handler's writes with the
job's completion (or a durable step's record), fenced on the lease.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import anyio
import pytest
from txn_support import Db, PgDb, SqliteDb

from wireframe import (
    Domain,
    Duplicate,
    ForeignConnection,
    JobCompleted,
    JobContext,
    JobNotFound,
    JobState,
    JobUnblocked,
    Scheduler,
    Submitted,
)
from wireframe.store import Complete, Lease
from wireframe.testing import running

pytestmark = pytest.mark.anyio

shop = Domain("shop")
TABLE: dict[str, str] = {}
"""The application's table of the test under way (set by `scheduler`)."""
GATES: dict[str, anyio.Event] = {}


async def app_write(conn: Any, row_id: int, note: str) -> None:
    """Insert an application row through a handler's connection (sqlite3 sync, psycopg async)."""
    if isinstance(conn, sqlite3.Connection):
        conn.execute(f"INSERT INTO {TABLE['name']} (id, note) VALUES (?, ?)", (row_id, note))
    else:
        await conn.execute(
            f"INSERT INTO {TABLE['name']} (id, note) VALUES (%s, %s)", (row_id, note)
        )


@shop.job()
async def plain(job: dict[str, Any], ctx: JobContext) -> str:
    return "ran"


@shop.job()
async def confirm(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    async with ctx.transaction() as conn:
        await app_write(conn, job["id"], "confirmed")
    return {"confirmed": job["id"]}


@shop.job()
async def stale(job: dict[str, Any], ctx: JobContext) -> str:
    GATES["started"].set()
    await GATES["go"].wait()  # meanwhile the test hands the lease to another worker
    async with ctx.transaction() as conn:
        await app_write(conn, job["id"], "stale")
    return "stale"


@shop.job()
async def stale_step(job: dict[str, Any], ctx: JobContext) -> str:
    GATES["started"].set()
    await GATES["go"].wait()
    async with ctx.transaction(step="write") as conn:
        await app_write(conn, job["id"], "stale step")
    return "stale"


@shop.job()
async def two_steps(job: dict[str, Any], ctx: JobContext) -> str:
    base = job["id"]
    async with ctx.transaction(step="first") as conn:
        await app_write(conn, base, "first")  # runs again on the re-run: rolled back there
    await ctx.sleep("between", 0)  # suspends: the job runs again from the top
    async with ctx.transaction(step="second") as conn:
        await app_write(conn, base + 1, "second")
    return "both"


@pytest.fixture
async def scheduler(db: Db) -> Scheduler:
    TABLE["name"] = db.table
    # A long fallback poll: a job is only seen early if something wakes the worker.
    return Scheduler(db.url, domains=[shop], poll_interval=30.0, claim_ttl=30.0)


async def test_rolled_back_transaction_leaves_no_job(db: Db, scheduler: Scheduler) -> None:
    async with scheduler:
        conn = await db.connect()
        try:
            await db.begin(conn)
            await db.write(conn, 1, "order")
            one = await scheduler.submit({"n": 1}, type=plain, connection=conn)
            many = await scheduler.submit_many([{"n": 2}, {"n": 3}], type=plain, connection=conn)
            await db.rollback(conn)
        finally:
            await db.close(conn)
        assert isinstance(one, Submitted)
        for handle in [one, *many]:
            assert await scheduler.get(handle.id) is None
        assert await scheduler.jobs() == []
        assert db.rows() == []


async def test_committed_job_runs_and_the_worker_wakes_only_at_commit(
    db: Db, scheduler: Scheduler
) -> None:
    await scheduler.open()  # on SQLite, opening needs the write lock a transaction holds
    async with running(scheduler):
        conn = await db.connect()
        try:
            await db.begin(conn)
            await db.write(conn, 7, "order")
            early = await scheduler.submit({"n": 1}, type=plain, connection=conn)
            if db.kind == "postgres":
                # The worker is woken by a committed job meanwhile and claims: it must not
                # see the uncommitted one.
                other = await scheduler.submit({"n": 2}, type=plain)
                assert await scheduler.result(other, timeout=20) == "ran"
                assert await scheduler.get(early.id) is None
            else:
                # SQLite: the transaction holds the write lock, so no claim runs meanwhile;
                # what a claim would read does not hold the job.
                assert db.jobs_seen_outside() == 0
            await db.commit(conn)
        finally:
            await db.close(conn)
        # Woken by the commit (NOTIFY / the file's data version), not by the 30 s poll.
        assert await scheduler.result(early, timeout=20) == "ran"
        assert db.rows() == [(7, "order")]


async def test_options_work_inside_the_transaction(db: Db, scheduler: Scheduler) -> None:
    await scheduler.open()  # on SQLite, opening needs the write lock a transaction holds
    async with running(scheduler):
        conn = await db.connect()
        try:
            await db.begin(conn)
            first = await scheduler.submit({"n": 1}, type=plain, key="k", connection=conn)
            again = await scheduler.submit({"n": 1}, type=plain, key="k", connection=conn)
            after = await scheduler.submit(
                {"n": 2}, type=plain, depends_on=[first], connection=conn
            )
            await db.commit(conn)
        finally:
            await db.close(conn)
        assert again == Duplicate(first.id)
        assert await scheduler.result(after, timeout=20) == "ran"
        dep, job = await scheduler.get(first.id), await scheduler.get(after.id)
        assert dep is not None and dep.state is JobState.COMPLETED
        assert job is not None and dep.finished_at is not None and job.started_at is not None
        assert job.started_at >= dep.finished_at  # it waited for its dependency


async def test_handler_writes_commit_with_the_completion_once(db: Db, scheduler: Scheduler) -> None:
    async with running(scheduler), scheduler.subscribe() as events:
        first = await scheduler.submit({"id": 10}, type=confirm)
        dependent = await scheduler.submit({"n": 1}, type=plain, depends_on=[first])
        assert await scheduler.result(first, timeout=20) == {"confirmed": 10}
        assert await scheduler.result(dependent, timeout=20) == "ran"
        seen: list[object] = []
        with anyio.fail_after(20):
            async for event in events:
                seen.append(event)
                if isinstance(event, JobCompleted) and event.job_id == dependent.id:
                    break
        attempts = await scheduler.store.attempts(first.id)
    completed = [e for e in seen if isinstance(e, JobCompleted) and e.job_id == first.id]
    assert len(completed) == 1  # published once, though no completer wrote it
    order = [type(e) for e in seen if getattr(e, "job_id", None) in (first.id, dependent.id)]
    assert order.index(JobCompleted) < order.index(JobUnblocked)
    assert db.rows() == [(10, "confirmed")]
    assert [a.outcome for a in attempts] == ["completed"]


async def take_over(db: Db, scheduler: Scheduler, job_id: int) -> Lease:
    """Hand the running job's lease to another worker (as a reclaim and a claim would): its
    new lease."""
    job = await scheduler.store.get(job_id)
    assert job is not None and job.state is JobState.RUNNING
    db.store_sql(
        "UPDATE jobs SET claim_seq = claim_seq + 1, worker_id = 'intruder' WHERE id = ?",
        (job_id,),
    )
    return Lease(job_id, job.claim_seq + 1)


@pytest.mark.parametrize("handler", ["stale", "stale_step"])
async def test_stale_attempt_cannot_commit(db: Db, scheduler: Scheduler, handler: str) -> None:
    GATES["started"], GATES["go"] = anyio.Event(), anyio.Event()
    async with running(scheduler):
        handle = await scheduler.submit({"id": 20}, type=f"shop::{handler}")
        with anyio.fail_after(20):
            await GATES["started"].wait()
        new_lease = await take_over(db, scheduler, handle.id)
        GATES["go"].set()
        with anyio.fail_after(20):
            while handle.id in scheduler.require_worker().running:
                await anyio.sleep(0.01)
    assert db.rows() == []  # the stale attempt's writes rolled back with its fenced write
    await scheduler.open()
    job = await scheduler.store.get(handle.id)
    assert job is not None and job.state is JobState.RUNNING and job.worker_id == "intruder"
    assert await scheduler.store.checkpoints(handle.id) == []
    # The new holder of the lease can complete it, in a transaction of its own.
    store: Any = scheduler.store
    lent = await store.lend()
    [applied] = await lent.bound.finish([Complete(new_lease, '"late"')])
    assert applied
    await lent.commit()
    lent.bound.committed()
    assert (await scheduler.store.get(handle.id)).state is JobState.COMPLETED  # type: ignore[union-attr]
    await scheduler.close()


async def test_durable_steps_write_once_across_reruns(db: Db, scheduler: Scheduler) -> None:
    async with running(scheduler):
        handle = await scheduler.submit({"id": 30}, type=two_steps)
        assert await scheduler.result(handle, timeout=20) == "both"
        checkpoints = await scheduler.store.checkpoints(handle.id)
    assert [(c.name, c.kind) for c in checkpoints if c.kind == "txn"] == [
        ("first", "txn"),
        ("second", "txn"),
    ]
    # The first step's block ran twice (its re-run hit the unique id and was rolled back).
    assert db.rows() == [(30, "first"), (31, "second")]


async def test_connection_to_another_database_is_refused(
    db: Db, scheduler: Scheduler, tmp_path: Any
) -> None:
    async with scheduler:
        if db.kind == "sqlite":
            other: Any = sqlite3.connect(tmp_path / "other.db", isolation_level=None)
            other.execute("BEGIN")
        else:
            import psycopg

            assert isinstance(db, PgDb)
            other = await psycopg.AsyncConnection.connect(db.dsn.rsplit("/", 1)[0] + "/postgres")
        try:
            with pytest.raises(ForeignConnection, match="not"):
                await scheduler.submit({"n": 1}, type=plain, connection=other)
        finally:
            if db.kind == "sqlite":
                other.close()
            else:
                await other.close()
        conn = await db.connect()  # the store's database, but no transaction open
        try:
            if db.kind == "sqlite":
                with pytest.raises(ForeignConnection, match="not in a transaction"):
                    await scheduler.submit({"n": 1}, type=plain, connection=conn)
            else:
                await conn.set_autocommit(True)
                with pytest.raises(ForeignConnection, match="autocommit"):
                    await scheduler.submit({"n": 1}, type=plain, connection=conn)
        finally:
            await db.close(conn)
        assert await scheduler.jobs() == []


async def test_memory_store_has_no_transactions() -> None:
    async with Scheduler("memory://", domains=[shop]) as scheduler:
        conn = sqlite3.connect(":memory:")
        with pytest.raises(ForeignConnection, match="outside any database"):
            await scheduler.submit({"n": 1}, type=plain, connection=conn)


@shop.job()
async def in_memory(job: dict[str, Any], ctx: JobContext) -> str:
    async with ctx.transaction():
        pass
    return "never"


async def test_memory_store_handler_transaction_fails_clearly() -> None:
    async with running(Scheduler("memory://", domains=[shop], poll_interval=0.05)) as scheduler:
        handle = await scheduler.submit({}, type=in_memory)
        with pytest.raises(Exception) as failed:
            await scheduler.result(handle, timeout=20)
    assert "outside any database" in str(failed.value)


class _Pooled:
    """What a SQLAlchemy `Connection.connection` is: it holds the DB-API connection."""

    def __init__(self, driver: object) -> None:
        self.driver_connection = driver


class _SqlAlchemyConnection:
    """A stand-in for a SQLAlchemy `Connection` (SQLAlchemy is not a test dependency)."""

    def __init__(self, driver: object) -> None:
        self.connection = _Pooled(driver)


async def test_a_sqlalchemy_style_connection_is_unwrapped(db: Db, scheduler: Scheduler) -> None:
    await scheduler.open()
    try:
        conn = await db.connect()
        try:
            await db.begin(conn)
            handle = await scheduler.submit(
                {"n": 1}, type=plain, connection=_SqlAlchemyConnection(conn)
            )
            await db.commit(conn)
        finally:
            await db.close(conn)
        assert await scheduler.get(handle.id) is not None
    finally:
        await scheduler.close()


async def test_a_refused_submit_leaves_the_application_transaction_usable(
    db: Db, scheduler: Scheduler
) -> None:
    async with scheduler:
        conn = await db.connect()
        try:
            await db.begin(conn)
            await db.write(conn, 1, "before")
            with pytest.raises(JobNotFound):
                await scheduler.submit({"n": 1}, type=plain, depends_on=[999_999], connection=conn)
            await db.write(conn, 2, "after")  # the failed submit was rolled back on its own
            await db.commit(conn)
        finally:
            await db.close(conn)
        assert await scheduler.jobs() == []
    assert db.rows() == [(1, "before"), (2, "after")]


@pytest.mark.postgres
async def test_a_sync_psycopg_connection_submits_in_its_transaction(pg_db: PgDb) -> None:
    import psycopg

    db = pg_db
    async with Scheduler(db.url, domains=[shop], worker=False) as scheduler:
        with psycopg.connect(db.dsn) as conn:
            with conn.transaction():
                handle = await scheduler.submit({"n": 1}, type=plain, connection=conn)
                assert await scheduler.get(handle.id) is None  # not committed yet
                path = conn.execute("SHOW search_path").fetchone()
            assert path is not None and db.schema not in str(path[0])  # the caller's, restored
        assert await scheduler.get(handle.id) is not None


async def test_sqlite_refuses_to_open_the_store_under_the_applications_lock(
    tmp_path: Any,
) -> None:
    db = SqliteDb(tmp_path / "app.db")
    TABLE["name"] = db.table
    scheduler = Scheduler(db.url, domains=[shop], worker=False)
    conn = await db.connect()
    try:
        await db.begin(conn)  # holds the write lock that opening the store needs
        with pytest.raises(ForeignConnection, match="open the scheduler before"):
            await scheduler.submit({"n": 1}, type=plain, connection=conn)
        await db.rollback(conn)
        await scheduler.open()
        await db.begin(conn)
        handle = await scheduler.submit({"n": 1}, type=plain, connection=conn)
        await db.commit(conn)
        assert await scheduler.get(handle.id) is not None
    finally:
        await db.close(conn)
        await scheduler.close()
