"""A write whose COMMIT loses its connection: the store finds out whether it happened.

Each test makes the first claim that leases anything (or submit, finish, retry: `lost_op`) lose its
connection at COMMIT, in one of four ways, on the real server:

- `committed/terminated`: the server committed, then closed the connection (the client never
  reads the acknowledgement);
- `committed/partitioned`: the server committed; the client's socket broke, the server's
  backend lives on, idle;
- `lost/terminated`: the server closed the connection before COMMIT arrived (it rolled back);
- `lost/partitioned`: COMMIT never reached the server, whose backend lives on idle in the
  claim's transaction, holding the claimed rows (a network partition: the server does not
  know the client is gone).

Whatever happened, the claim returns each job once, with its first attempt, and leaves no job
leased to nobody; a submit returns its ids and inserts each job once; a finish reports True for
each outcome written, once; a retry is applied once and reported done.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import attrs
import psycopg
import pytest

from wireframe import Domain, JobContext, JobState, Retry, Scheduler
from wireframe.store import (
    ClaimRequest,
    Complete,
    Duplicate,
    Fail,
    NewJob,
    PostgresStore,
    Release,
    Submitted,
    pg_sql,
)
from wireframe.store import postgres as pg_module
from wireframe.store.pg_sql import pg_tx
from wireframe.store.records import NewSchedule
from wireframe.store.sql import claim as claim_sql
from wireframe.store.sql import control as control_sql
from wireframe.store.sql import finish as finish_sql
from wireframe.store.sql import submit as submit_sql
from wireframe.store.sql.tx import Tx
from wireframe.testing import running

from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg

pytestmark = pytest.mark.anyio

MODES = ["committed/terminated", "committed/partitioned", "lost/terminated", "lost/partitioned"]

OPS: dict[str, tuple[Any, str]] = {
    "claim": (claim_sql, "claim"),
    "submit": (submit_sql, "submit"),
    "finish": (finish_sql, "finish"),
    "retry": (control_sql, "retry"),
    "finish_and_claim": (pg_module, "finish_then_claim"),
}
"""The operations whose COMMIT a test may lose: the engine function the store calls."""


class LoseCommit:
    """Makes the COMMIT of the first `op` (claim, submit, finish) that returns anything lose
    its connection."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, mode: str, op: str = "claim") -> None:
        self.committed, self.how = mode.split("/")
        self.fired = 0
        self._conns: dict[int, psycopg.Connection[Any]] = {}
        self._kept: list[int] = []
        module, name = OPS[op]
        self._armed: psycopg.Connection[Any] | None = None
        real_tx, real_op = pg_module.pg_tx, getattr(module, name)
        real_commit = psycopg.Connection.commit
        real_execute = psycopg.Connection.execute

        def pg_tx(conn: psycopg.Connection[Any]) -> Tx:
            tx = real_tx(conn)
            self._conns[id(tx)] = conn
            return tx

        def lossy(tx: Tx, now: float, *args: Any) -> Any:
            result = real_op(tx, now, *args)
            if (result or op == "retry") and not self.fired:  # retry returns nothing
                self.fired += 1
                self._armed = self._conns[id(tx)]
            return result

        def commit(conn: psycopg.Connection[Any]) -> None:
            if conn is self._armed:
                # The store's COMMIT of the transaction (whatever else it sent before it).
                self._armed = None
                self._break(conn, lambda: real_commit(conn))
            real_commit(conn)

        def execute(conn: psycopg.Connection[Any], query: Any, *args: Any, **kwargs: Any) -> Any:
            if conn is self._armed and isinstance(query, str) and query.endswith("COMMIT"):
                # A COMMIT sent with other statements (the commit token, a NOTIFY).
                self._armed = None
                self._break(conn, lambda: real_execute(conn, query, *args, **kwargs))
            return real_execute(conn, query, *args, **kwargs)

        monkeypatch.setattr(pg_module, "pg_tx", pg_tx)
        monkeypatch.setattr(module, name, lossy)
        monkeypatch.setattr(psycopg.Connection, "commit", commit)
        monkeypatch.setattr(psycopg.Connection, "execute", execute)

    def _break(self, conn: psycopg.Connection[Any], send_commit: Callable[[], object]) -> None:
        """Run just before the store commits the transaction (`send_commit` does it)."""
        if self.committed == "committed":
            send_commit()  # the transaction is in the database
            conn.execute("SELECT 1")  # so that the store's COMMIT goes to the server again
        if self.how == "terminated":
            pid = conn.info.backend_pid
            with psycopg.connect(pg_dsn(), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                deadline = time.monotonic() + 10
                while admin.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone():
                    assert time.monotonic() < deadline, "the backend outlived its termination"
                    time.sleep(0.01)
        else:
            # The client's socket breaks; the server's end stays open (held here), so its
            # backend never learns that the client has gone.
            fd = conn.fileno()
            self._kept.append(os.dup(fd))
            dead, peer = socket.socketpair()
            peer.close()
            os.dup2(dead.fileno(), fd)
            dead.close()

    def close(self) -> None:
        """Let the server see the end of the connections kept open."""
        for fd in self._kept:
            os.close(fd)
        self._kept.clear()


@pytest.fixture
def schema() -> Iterator[str]:
    """A fresh schema, dropped afterwards."""
    require_pg()
    name = new_schema_name("wfl")
    try:
        yield name
    finally:
        drop_schema(name)


@pytest.fixture
def lost_op() -> str:
    """The operation whose COMMIT is lost (a test parametrizes it to change it)."""
    return "claim"


@pytest.fixture(params=MODES)
def lose(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, lost_op: str
) -> Iterator[LoseCommit]:
    """The fault of the test's mode, on `lost_op`."""
    fault = LoseCommit(monkeypatch, request.param, lost_op)
    try:
        yield fault
    finally:
        fault.close()


@pytest.fixture
async def store(schema: str, anyio_backend: str) -> AsyncIterator[PostgresStore]:
    """An open store on the fresh schema."""
    store = PostgresStore(pg_dsn(), schema=schema, pool_size=2, reconnect_timeout=20)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def rows(schema: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one statement in the test's schema, read from outside the store."""
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        return conn.execute(sql, params).fetchall()


async def test_a_claim_whose_commit_is_lost_returns_each_job_once(
    store: PostgresStore, schema: str, lose: LoseCommit
) -> None:
    submitted = await store.submit([NewJob("d::t", "d", "{}") for _ in range(3)])
    ids = [r.id for r in submitted if isinstance(r, Submitted)]
    request = ClaimRequest("w1", 10, 60.0, ("d",), housekeep=False)

    claimed = await store.claim(request)

    assert lose.fired == 1
    assert [j.id for j in claimed] == ids
    assert all(j.state is JobState.RUNNING and j.worker_id == "w1" for j in claimed)
    assert [(j.attempt, j.claim_seq) for j in claimed] == [(1, 1)] * 3
    # Nothing else is leased, nothing left pending, no attempt spent or opened twice.
    assert await store.claim(request) == []
    assert sorted(rows(schema, "SELECT id, state, worker_id, attempt FROM jobs")) == [
        (i, "running", "w1", 1) for i in ids
    ]
    for i in ids:
        assert [(a.attempt, a.worker_id, a.finished_at) for a in await store.attempts(i)] == [
            (1, "w1", None)
        ]
    # The leases returned are the ones the database holds.
    assert await store.finish([Complete(j.lease, "null") for j in claimed]) == [True] * 3
    assert rows(schema, "SELECT DISTINCT state FROM jobs") == [("completed",)]
    assert sorted(rows(schema, "SELECT job_id, attempt, worker_id, outcome FROM attempts")) == [
        (i, 1, "w1", "completed") for i in ids
    ]


@pytest.mark.parametrize("lose", ["committed/terminated", "lost/partitioned"], indirect=True)
async def test_a_chosen_claim_comes_back_in_the_chooser_order(
    store: PostgresStore, schema: str, lose: LoseCommit
) -> None:
    submitted = await store.submit([NewJob("d::t", "d", "{}") for _ in range(4)])
    ids = [r.id for r in submitted if isinstance(r, Submitted)]
    request = ClaimRequest("w1", 3, 60.0, ("d",), scan=10, housekeep=False)

    claimed = await store.claim(request, lambda jobs: [j.id for j in reversed(jobs)])

    assert lose.fired == 1
    assert [j.id for j in claimed] == ids[::-1][:3]
    assert sorted(rows(schema, "SELECT id FROM jobs WHERE state = 'running'")) == [
        (i,) for i in sorted(ids[1:])
    ]


async def test_each_claim_writes_a_token_of_its_own(store: PostgresStore, schema: str) -> None:
    await store.submit([NewJob("d::t", "d", "{}") for _ in range(4)])
    for _ in range(2):
        await store.claim(ClaimRequest("w1", 2, 60.0, ("d",), housekeep=False))
    tokens = rows(schema, "SELECT claim_token, count(*) FROM jobs GROUP BY 1")
    assert sorted(n for _, n in tokens) == [2, 2]
    assert all(isinstance(token, str) and len(token) == 32 for token, _ in tokens)


@attrs.frozen
class Once:
    n: int


@pytest.mark.parametrize("lost_op", ["claim", "submit", "finish"])
async def test_a_worker_runs_single_attempt_jobs_once_across_a_lost_commit(
    schema: str, lose: LoseCommit, anyio_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    d = Domain("d")
    runs: Counter[int] = Counter()

    @d.job(name="once", retry=Retry.none())
    async def once(job: Once, ctx: JobContext) -> int:
        runs[ctx.job.id] += 1
        return job.n

    store = PostgresStore(pg_dsn(), schema=schema, pool_size=2, reconnect_timeout=20)
    # A short lease: a claim left behind would be taken back, its only attempt spent, at once.
    scheduler = Scheduler(store, domains=[d], claim_ttl=1.0, poll_interval=0.05)
    try:
        ids = [o.id for o in await scheduler.submit_many([Once(i) for i in range(5)])]
        async with running(scheduler):
            results = [await scheduler.result(i, timeout=20) for i in ids]
    finally:
        await scheduler.close()
    assert lose.fired == 1
    assert results == list(range(5))
    assert runs == Counter(ids)
    assert "outcome rejected" not in caplog.text
    assert sorted(rows(schema, "SELECT id, state, attempt, max_attempts FROM jobs")) == [
        (i, "completed", 1, 1) for i in ids
    ]
    assert sorted(rows(schema, "SELECT job_id, attempt, outcome FROM attempts")) == [
        (i, 1, "completed") for i in ids
    ]


@pytest.mark.parametrize("lost_op", ["submit"])
async def test_a_submit_whose_commit_is_lost_inserts_each_job_once(
    store: PostgresStore, schema: str, lose: LoseCommit
) -> None:
    lose.fired = 1  # the fault waits for the batch below
    (parent_id,) = [r.id for r in await store.submit([NewJob("d::p", "d", "{}")])]
    held = await store.submit([NewJob("d::k", "d", "{}", key="held")])
    lose.fired = 0

    batch = [
        NewJob("d::t", "d", "{}"),
        NewJob("d::k", "d", "{}", key="held"),  # a duplicate of a job already in the database
        NewJob("d::k", "d", "{}", key="new"),
        NewJob("d::k", "d", "{}", key="new"),  # a duplicate of one in the batch
        NewJob("d::c", "d", "{}", parent_id=parent_id),
        NewJob("d::r", "d", "{}", recurring=NewSchedule("{}", time.time() + 3600)),
    ]
    results = await store.submit(batch)

    assert lose.fired == 1
    assert isinstance(results[0], Submitted)
    new_id = results[0].id
    assert results[1] == Duplicate(held[0].id)
    assert isinstance(results[2], Submitted) and results[3] == Duplicate(results[2].id)
    inserted = [r for r in results if isinstance(r, Submitted)]
    assert len(inserted) == 4 and inserted[-1].schedule_id is not None
    # The database holds exactly what the results say, once.
    assert sorted(rows(schema, "SELECT id, type, key FROM jobs WHERE id > %s", (held[0].id,))) == [
        (new_id, "d::t", None),
        (results[2].id, "d::k", "new"),
        (results[4].id, "d::c", None),
        (results[5].id, "d::r", None),
    ]
    assert rows(schema, "SELECT active_children FROM jobs WHERE id = %s", (parent_id,)) == [(1,)]
    assert rows(schema, "SELECT id, last_job_id FROM schedules") == [
        (inserted[-1].schedule_id, results[5].id)
    ]


async def _claim_all(store: PostgresStore, n: int) -> list[Any]:
    submitted = await store.submit([NewJob("d::t", "d", "{}") for _ in range(n)])
    assert all(isinstance(r, Submitted) for r in submitted)
    claimed = await store.claim(ClaimRequest("w1", n, 60.0, ("d",), housekeep=False))
    assert len(claimed) == n
    return claimed


@pytest.mark.parametrize("lost_op", ["finish"])
async def test_a_finish_whose_commit_is_lost_reports_the_outcomes_it_wrote(
    store: PostgresStore, schema: str, lose: LoseCommit
) -> None:
    done, failed, released, gone = await _claim_all(store, 4)
    # One lease is gone before the finish: it is reported rejected, committed or not.
    stale = attrs.evolve(gone.lease, claim_seq=gone.lease.claim_seq + 1)

    applied = await store.finish(
        [
            Complete(done.lease, '"ok"'),  # the fused fast path
            Fail(failed.lease, "boom"),  # the general path
            Release(released.lease, "pending", "shutdown"),
            Complete(stale, "null"),
        ]
    )

    assert lose.fired == 1
    assert applied == [True, True, True, False]
    assert sorted(rows(schema, "SELECT id, state, result, error FROM jobs")) == [
        (done.id, "completed", '"ok"', None),
        (failed.id, "failed", None, "boom"),
        (released.id, "pending", None, None),
        (gone.id, "running", None, None),
    ]
    assert sorted(rows(schema, "SELECT job_id, attempt, outcome FROM attempts")) == [
        (done.id, 1, "completed"),
        (failed.id, 1, "failed"),
        (released.id, 1, "shutdown"),
    ]
    assert [(a.attempt, a.outcome) for a in await store.attempts(gone.id)] == [(1, None)]
    # Applied once: a second finish of the same outcomes finds the leases gone.
    assert await store.finish([Complete(done.lease, "null")]) == [False]


@pytest.mark.parametrize("lost_op", ["finish_and_claim"])
async def test_a_finish_and_claim_whose_commit_is_lost_is_applied_once(
    store: PostgresStore, schema: str, lose: LoseCommit
) -> None:
    [done] = await _claim_all(store, 1)
    submitted = await store.submit([NewJob("d::t", "d", "{}") for _ in range(2)])
    fresh = [r.id for r in submitted if isinstance(r, Submitted)]
    request = ClaimRequest("w1", 10, 60.0, ("d",), housekeep=False)

    applied, claimed = await store.finish_and_claim([Complete(done.lease, '"ok"')], request)

    assert lose.fired == 1
    assert applied == [True]
    assert [j.id for j in claimed] == fresh
    assert [(j.attempt, j.claim_seq) for j in claimed] == [(1, 1)] * 2
    assert sorted(rows(schema, "SELECT id, state, worker_id FROM jobs")) == [
        (done.id, "completed", None),
        *((i, "running", "w1") for i in fresh),
    ]
    assert rows(schema, "SELECT job_id, outcome FROM attempts") == [(done.id, "completed")]
    # Nothing else is leased, and the leases returned are the ones the database holds.
    assert await store.claim(request) == []
    assert await store.finish([Complete(j.lease, "null") for j in claimed]) == [True, True]


@pytest.mark.parametrize("lost_op", ["retry"])
async def test_a_retry_whose_commit_is_lost_is_applied_once(
    store: PostgresStore, schema: str, lose: LoseCommit
) -> None:
    [job] = await _claim_all(store, 1)
    assert await store.finish([Fail(job.lease, "boom")]) == [True]

    await store.retry(job.id)  # no StoreError: the store found out whether it happened

    assert lose.fired == 1
    assert rows(schema, "SELECT state, attempt, max_attempts FROM jobs") == [("pending", 1, 2)]
    [again] = await store.claim(ClaimRequest("w2", 1, 60.0, ("d",), housekeep=False))
    assert (again.id, again.attempt) == (job.id, 2)


def test_settling_ends_the_lost_transaction_s_process_and_never_a_stranger(schema: str) -> None:
    """A process is named by its pid and its start time: after a crash or once it has ended,
    its pid may be a stranger's, which settling must leave alone."""
    with (
        psycopg.connect(pg_dsn(), autocommit=True) as admin,
        psycopg.connect(pg_dsn()) as held,
    ):
        held.execute("SELECT 1")  # idle in a transaction, like one whose COMMIT never arrived
        pid = held.info.backend_pid
        (started,) = admin.execute(
            "SELECT backend_start::text FROM pg_stat_activity WHERE pid = %s", (pid,)
        ).fetchone()

        stranger = pg_sql.fence(pg_tx(admin), pid, "2000-01-01 00:00:00+00")

        assert stranger is True  # no such process: the lost one has ended
        assert held.execute("SELECT 2").fetchone() == (2,)  # the stranger is untouched
        assert pg_sql.fence(pg_tx(admin), pid, started) is True
        assert held.closed or held.broken or _gone(held)


def _gone(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
    except psycopg.OperationalError:
        return True
    return False


async def test_writes_leave_a_commit_token_and_housekeeping_deletes_old_ones(
    store: PostgresStore, schema: str
) -> None:
    [job] = await _claim_all(store, 1)  # a submit (one token) and a claim (a token on its row)
    assert await store.finish([Complete(job.lease, "null")]) == [True]
    assert rows(schema, "SELECT count(*) FROM commit_tokens") == [(2,)]
    hour_ago = int((time.time() - 3600) * 1000)
    old = str(uuid.UUID(int=(hour_ago << 80) | 12345))
    rows(schema, "INSERT INTO commit_tokens VALUES (%s) RETURNING 1", (old,))

    await store.housekeep()

    left = rows(schema, "SELECT token::text FROM commit_tokens")
    assert len(left) == 2 and (old,) not in left
