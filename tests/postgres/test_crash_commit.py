"""A COMMIT cut off by a real crash of the server: the store reports what the database holds.

Each test crashes a private cluster (`pg_ctl stop -m immediate`, then a restart) while the
COMMIT of one submit, finish, finish_and_claim or claim is on its way:

- `before`: the server crashes before the COMMIT reaches it. The transaction's id never reached
  the WAL, so the restarted server hands it out again: other transactions take it and commit
  (`burn`), and the commit log then says "committed" for the lost transaction's id;
- `after`: the server commits, then crashes before the client reads the acknowledgement;
- `racing`: the crash and the COMMIT race each other from two threads.

Whatever happened, ids returned exist once, outcomes reported applied are applied, and each
job is leased once at its attempt.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import psycopg
import pytest

from wireframe.store import (
    ClaimRequest,
    Complete,
    JobRecord,
    NewJob,
    PostgresStore,
    Submitted,
)
from wireframe.store import postgres as pg_module
from wireframe.store.sql import claim as claim_sql
from wireframe.store.sql import finish as finish_sql
from wireframe.store.sql import submit as submit_sql
from wireframe.store.sql.tx import Tx

from pg_support import new_schema_name
from private_pg import PrivateCluster, private_cluster

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

WHEN = ["before", "after", "racing"]

OPS: dict[str, tuple[Any, str]] = {
    "claim": (claim_sql, "claim"),
    "submit": (submit_sql, "submit"),
    "finish": (finish_sql, "finish"),
    "finish_and_claim": (pg_module, "finish_then_claim"),
}


@pytest.fixture
def anyio_backend() -> str:
    """Crash tests run on asyncio only (the store's threads are the same on trio)."""
    return "asyncio"


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivateCluster]:
    """A private cluster whose WAL writer waits: a crash loses what no COMMIT flushed."""
    with private_cluster({"wal_writer_delay": "'10s'"}) as cluster:
        yield cluster


def burn(cluster: PrivateCluster, n: int = 30) -> None:
    """Commit `n` transactions that each take a transaction id (after a restart: reused ones)."""
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS public.burn (x int)")
        for _ in range(n):
            conn.execute("INSERT INTO public.burn VALUES (1)")


class CrashAtCommit:
    """Crashes the server at the COMMIT of the next `op` that returns anything, once armed."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, cluster: PrivateCluster, op: str, when: str
    ) -> None:
        self.cluster = cluster
        self.when = when
        self.fired = 0
        self.ready = False
        self._armed: psycopg.Connection[Any] | None = None
        self._conns: dict[int, psycopg.Connection[Any]] = {}
        module, name = OPS[op]
        real_tx, real_op = pg_module.pg_tx, getattr(module, name)
        real_commit = psycopg.Connection.commit
        real_execute = psycopg.Connection.execute

        def pg_tx(conn: psycopg.Connection[Any]) -> Tx:
            tx = real_tx(conn)
            self._conns[id(tx)] = conn
            return tx

        def armed(tx: Tx, now: float, *args: Any) -> Any:
            result = real_op(tx, now, *args)
            if result and self.ready:
                self.ready = False
                self._armed = self._conns[id(tx)]
            return result

        def commit(conn: psycopg.Connection[Any]) -> None:
            if conn is self._armed:
                self._strike(conn, lambda: real_commit(conn))
                return
            real_commit(conn)

        def execute(conn: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            if conn is self._armed and isinstance(query, str) and query.endswith("COMMIT"):
                return self._strike(conn, lambda: real_execute(conn, query, *args, **kwargs))
            return real_execute(conn, query, *args, **kwargs)

        monkeypatch.setattr(pg_module, "pg_tx", pg_tx)
        monkeypatch.setattr(module, name, armed)
        monkeypatch.setattr(psycopg.Connection, "commit", commit)
        monkeypatch.setattr(psycopg.Connection, "execute", execute)

    def _strike(self, conn: psycopg.Connection[Any], send: Callable[[], Any]) -> Any:
        """Send the COMMIT (`send`) with a crash before, after or during it."""
        self._armed = None
        self.fired += 1
        if self.when == "before":
            self.cluster.crash_restart()
            burn(self.cluster)
            return send()  # on the dead connection: it fails
        if self.when == "after":
            send()  # committed
            conn.execute("SELECT 1")  # a new transaction, so that the COMMIT below is sent
            self.cluster.crash_restart()
            burn(self.cluster)
            return send()  # on the dead connection: it fails, the acknowledgement is lost
        crash = threading.Thread(target=self.cluster.crash_restart)
        crash.start()
        try:
            return send()
        finally:
            crash.join()
            burn(self.cluster)


@pytest.fixture(params=WHEN)
def when(request: pytest.FixtureRequest) -> str:
    """When the crash comes."""
    return str(request.param)


@pytest.fixture
async def store(pg: PrivateCluster) -> AsyncIterator[PostgresStore]:
    """An open store in a fresh schema of the private cluster."""
    store = PostgresStore(pg.dsn, schema=new_schema_name("wfc"), pool_size=2, reconnect_timeout=60)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def rows(pg: PrivateCluster, store: PostgresStore, sql: str, *params: Any) -> list[Any]:
    """Rows of one statement in the store's schema, read from outside the store."""
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {store.schema}")
        return conn.execute(sql, params).fetchall()


REQUEST = ClaimRequest("w1", 10, 60.0, ("d",), housekeep=False)


async def submit(store: PostgresStore, n: int) -> list[int]:
    results = await store.submit([NewJob("d::t", "d", "{}") for _ in range(n)])
    return [r.id for r in results if isinstance(r, Submitted)]


def assert_leased_once(pg: PrivateCluster, store: PostgresStore, claimed: list[JobRecord]) -> None:
    """The jobs returned are exactly the running ones, leased to w1 at their first attempt."""
    assert [(j.attempt, j.claim_seq, j.worker_id) for j in claimed] == [(1, 1, "w1")] * len(claimed)
    running = rows(
        pg,
        store,
        "SELECT id, worker_id, attempt, claim_seq FROM jobs WHERE state = 'running' ORDER BY id",
    )
    assert running == sorted((j.id, "w1", 1, 1) for j in claimed)


async def test_a_submit_cut_by_a_crash_returns_the_ids_the_database_holds(
    monkeypatch: pytest.MonkeyPatch, pg: PrivateCluster, store: PostgresStore, when: str
) -> None:
    fault = CrashAtCommit(monkeypatch, pg, "submit", when)
    before = await submit(store, 2)
    fault.ready = True

    ids = await submit(store, 3)

    assert fault.fired == 1
    assert len(ids) == 3
    assert rows(pg, store, "SELECT id FROM jobs ORDER BY id") == [(i,) for i in before + ids]


async def test_a_finish_cut_by_a_crash_reports_the_outcomes_the_database_holds(
    monkeypatch: pytest.MonkeyPatch, pg: PrivateCluster, store: PostgresStore, when: str
) -> None:
    fault = CrashAtCommit(monkeypatch, pg, "finish", when)
    await submit(store, 2)
    claimed = await store.claim(REQUEST)
    fault.ready = True

    applied = await store.finish([Complete(j.lease, '"ok"') for j in claimed])

    assert fault.fired == 1
    assert applied == [True, True]
    assert rows(pg, store, "SELECT state, result FROM jobs") == [("completed", '"ok"')] * 2
    assert rows(pg, store, "SELECT outcome FROM attempts") == [("completed",)] * 2
    assert await store.finish([Complete(j.lease, "null") for j in claimed]) == [False, False]


async def test_a_finish_and_claim_cut_by_a_crash_is_reported_as_applied(
    monkeypatch: pytest.MonkeyPatch, pg: PrivateCluster, store: PostgresStore, when: str
) -> None:
    fault = CrashAtCommit(monkeypatch, pg, "finish_and_claim", when)
    [first] = await submit(store, 1)
    [done] = await store.claim(REQUEST)
    fresh = await submit(store, 2)
    fault.ready = True

    applied, claimed = await store.finish_and_claim([Complete(done.lease, '"ok"')], REQUEST)

    assert fault.fired == 1
    assert applied == [True]
    assert rows(pg, store, "SELECT state FROM jobs WHERE id = %s", first) == [("completed",)]
    assert [j.id for j in claimed] == fresh
    assert_leased_once(pg, store, claimed)
    assert await store.claim(REQUEST) == []
    assert await store.finish([Complete(j.lease, "null") for j in claimed]) == [True, True]


async def test_a_claim_cut_by_a_crash_leases_each_job_once(
    monkeypatch: pytest.MonkeyPatch, pg: PrivateCluster, store: PostgresStore, when: str
) -> None:
    fault = CrashAtCommit(monkeypatch, pg, "claim", when)
    ids = await submit(store, 3)
    fault.ready = True

    claimed = await store.claim(REQUEST)

    assert fault.fired == 1
    assert [j.id for j in claimed] == ids
    assert_leased_once(pg, store, claimed)
    assert await store.claim(REQUEST) == []
    assert await store.finish([Complete(j.lease, "null") for j in claimed]) == [True] * 3
