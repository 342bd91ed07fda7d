"""Claims, finishes, heartbeats and housekeeping read only the rows they touch, whatever the
planner's statistics say.

A queue table's statistics lag behind it: ANALYZE ran when the table held a few pending jobs and
no running one, and thousands have arrived since. A lookup by id that also said `state = ...`
then let PostgreSQL read the partial index of every running (or pending) job, or the whole
table, and filter by id: the cost of each finish, claim and heartbeat grew with the queue. Here
the cost is counted in rows read by the transaction itself (`pg_stat_xact_user_tables`), not
timed.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import psycopg
import pytest

from wireframe.store import Beat, ClaimRequest, Complete, Fail, NewJob, PostgresStore
from wireframe.store.pg_sql import pg_tx
from wireframe.store.records import JobRecord, Lease, LeaseStatus
from wireframe.store.sql import claim as claim_sql
from wireframe.store.sql import durable as durable_sql
from wireframe.store.sql import finish as finish_sql
from wireframe.store.sql.tx import Tx

from pg_support import drop_schema, new_schema_name, pg_dsn, require_pg

pytestmark = pytest.mark.anyio

T = TypeVar("T")

BATCH = 64
QUEUED = 3000


@pytest.fixture
async def stale() -> AsyncIterator[tuple[PostgresStore, list[JobRecord]]]:
    """A store whose statistics saw 10 pending jobs; it now holds QUEUED running, QUEUED pending."""
    require_pg()
    name = new_schema_name("wfs")
    store = PostgresStore(pg_dsn(), schema=name, pool_size=1)
    await store.open()
    try:
        await store.prepare_browsing()  # a browsed store: its extra indexes must not tempt
        await store.submit([_job(i) for i in range(10)])
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            conn.execute(f"ANALYZE {name}.jobs")
        store._inserted = -(10**9)  # the store would refresh them after bulk inserts: not here
        for start in range(10, 2 * QUEUED, 1000):
            await store.submit([_job(i) for i in range(start, min(2 * QUEUED, start + 1000))])
        running: list[JobRecord] = []
        while len(running) < QUEUED:
            running += await store.claim(_request(min(1000, QUEUED - len(running))))
        yield store, running
    finally:
        await store.close()
        drop_schema(name)


def _job(i: int) -> NewJob:
    return NewJob("bench::noop", "bench", f'{{"i": {i}}}', max_attempts=2)


def _request(limit: int) -> ClaimRequest:
    return ClaimRequest("w1", limit, 300.0, ("bench",), housekeep=False)


def _rows_read(conn: psycopg.Connection[object]) -> int:
    """Rows of `jobs` this transaction has read so far, by sequential or index scans."""
    row = conn.execute(
        "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0) "
        "FROM pg_stat_xact_user_tables WHERE relid = 'jobs'::regclass"
    ).fetchone()
    assert row is not None
    return int(row[0])


def _read_by(
    store: PostgresStore, op: Callable[[Tx], T], pending: list[int] | None = None
) -> tuple[T, int]:
    """What `op` returns in a transaction of its own (rolled back), and the rows it read; the
    jobs then pending are counted into `pending` (after the rows are counted)."""
    # The store's own connection options (bitmap scans off), in its schema.
    with psycopg.connect(
        pg_dsn(), options=f"-c search_path={store.schema} -c enable_bitmapscan=off"
    ) as conn:
        before = _rows_read(conn)
        result = op(pg_tx(conn))
        read = _rows_read(conn) - before
        if pending is not None:
            row = conn.execute("SELECT count(*) FROM jobs WHERE state = 'pending'").fetchone()
            pending.append(row[0] if row else 0)
        conn.rollback()
    return result, read


@pytest.mark.parametrize("kind", ["complete", "fail"])
async def test_outcomes_read_their_own_rows_not_every_running_job(
    stale: tuple[PostgresStore, list[JobRecord]], kind: str
) -> None:
    store, running = stale
    leases = [Lease(j.id, j.claim_seq) for j in running[-BATCH:]]
    outcomes = [Complete(x, "1") if kind == "complete" else Fail(x, "boom") for x in leases]
    applied, read = _read_by(store, lambda tx: finish_sql.finish(tx, time.time(), outcomes))
    assert applied == [True] * BATCH
    assert read <= 3 * BATCH, f"{BATCH} outcomes ({kind}) read {read} rows among {QUEUED} running"


async def test_a_claim_reads_about_what_it_leases_not_every_pending_job(
    stale: tuple[PostgresStore, list[JobRecord]],
) -> None:
    store, _ = stale
    claimed, read = _read_by(
        store,
        lambda tx: claim_sql.claim(tx, time.time(), _request(BATCH), None, uuid.uuid4().hex),
    )
    assert len(claimed) == BATCH
    assert read <= 4 * BATCH, f"a claim of {BATCH} jobs read {read} rows among {QUEUED} pending"


async def test_heartbeats_read_their_own_rows(
    stale: tuple[PostgresStore, list[JobRecord]],
) -> None:
    store, running = stale
    beats = [Beat(Lease(j.id, j.claim_seq)) for j in running[-BATCH:]]
    status, read = _read_by(store, lambda tx: finish_sql.heartbeat(tx, time.time(), beats, 300.0))
    assert list(status.values()) == [LeaseStatus.OK] * BATCH
    assert read <= 3 * BATCH, f"{BATCH} heartbeats read {read} rows among {QUEUED} running"


async def test_housekeeping_with_nothing_due_reads_nothing(
    stale: tuple[PostgresStore, list[JobRecord]],
) -> None:
    store, _ = stale
    # Leases last 300 s: none has expired; nothing is scheduled or has a ttl.
    woke, read = _read_by(store, lambda tx: claim_sql.housekeep(tx, time.time()))
    assert woke is False
    assert read <= 10, f"housekeeping read {read} rows with nothing due"


async def test_housekeeping_reclaims_expired_leases_through_their_index(
    stale: tuple[PostgresStore, list[JobRecord]],
) -> None:
    store, _ = stale
    pending: list[int] = []
    woke, read = _read_by(
        store,
        lambda tx: claim_sql.housekeep(tx, time.time() + 301),
        pending,  # all expired
    )
    assert woke is True
    assert pending == [2 * QUEUED]
    assert read <= 3 * QUEUED, f"reclaiming {QUEUED} leases read {read} rows"


async def test_a_checkpoint_write_reads_its_own_row(
    stale: tuple[PostgresStore, list[JobRecord]],
) -> None:
    store, running = stale
    lease = Lease(running[-1].id, running[-1].claim_seq)
    written, read = _read_by(
        store,
        lambda tx: durable_sql.put_checkpoint(tx, time.time(), lease, 0, "s", "step", "1", 300.0),
    )
    assert written is LeaseStatus.OK
    assert read <= 3, f"a checkpoint write read {read} rows among {QUEUED} running"
