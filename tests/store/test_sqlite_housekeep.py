"""SQLite stores: what one operation notes on the store's shared `Tx` never outlives it.

`SqliteStore` runs every operation on one `Tx`. `housekeep()` returns its `wakes` flag, so a
flag left set by an earlier operation (a submit, a claim that woke a job, an earlier
housekeeping pass) would make every later `housekeep()` report work that is not there, and a
worker that claims again at once on True would spin. Transitions of a transaction whose COMMIT
failed must not reach observers with the next operation either.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from wireframe.store import JobState, SqliteMemoryStore, SqliteStore, Transition

from store_support import TTL, claim, claim_one, state, submit

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", "sqlite-memory"])
async def sqlite(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Any, anyio_backend: str
) -> AsyncIterator[SqliteStore]:
    """An open, empty SQLite store (on a file, or in memory) driven by the fake clock."""
    store = (
        SqliteStore(tmp_path / "jobs.db", clock=clock)
        if request.param == "sqlite"
        else SqliteMemoryStore(clock=clock)
    )
    async with store:
        yield store


async def test_housekeep_after_a_submit_with_nothing_due_is_false(sqlite: SqliteStore) -> None:
    await submit(sqlite)  # pending at once: the submit itself wakes workers
    assert await sqlite.housekeep() is False


async def test_housekeep_is_true_once_when_a_delayed_job_becomes_due(
    sqlite: SqliteStore, clock: Any
) -> None:
    job_id = await submit(sqlite, run_at=clock.now + 5)
    assert await sqlite.housekeep() is False  # not due yet
    clock.advance(5)
    assert await sqlite.housekeep() is True
    assert await state(sqlite, job_id) is JobState.PENDING
    assert await sqlite.housekeep() is False  # nothing new became due
    clock.advance(60)
    assert await sqlite.housekeep() is False


async def test_housekeep_is_true_once_when_an_expired_lease_is_reclaimed(
    sqlite: SqliteStore, clock: Any
) -> None:
    job_id = await submit(sqlite, max_attempts=2)
    await claim_one(sqlite, job_id, worker="gone")
    assert await sqlite.housekeep() is False  # the lease still runs
    clock.advance(TTL + 1)
    assert await sqlite.housekeep() is True
    assert await state(sqlite, job_id) is JobState.PENDING
    assert await sqlite.housekeep() is False


async def test_housekeep_after_a_claim_that_woke_a_job_is_false(
    sqlite: SqliteStore, clock: Any
) -> None:
    job_id = await submit(sqlite, run_at=clock.now + 5)
    clock.advance(5)
    assert [j.id for j in await claim(sqlite)] == [job_id]  # its housekeeping woke the job
    assert await sqlite.housekeep() is False


class _CommitFails:
    """The store's connection, whose next COMMIT raises (a disk I/O error) without running."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.armed = True

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        if sql == "COMMIT" and self.armed:
            self.armed = False
            raise sqlite3.OperationalError("disk I/O error")
        return self.conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)


async def test_transitions_of_a_failed_commit_never_reach_observers(
    sqlite: SqliteStore, clock: Any
) -> None:
    job_id = await submit(sqlite, expires_at=clock.now + 5)
    seen: list[Transition] = []
    sqlite.observe(seen.extend)
    clock.advance(10)  # the ttl ran out: housekeeping expires the job

    conn = sqlite._conn
    assert conn is not None
    sqlite._conn = failing = _CommitFails(conn)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        await sqlite.housekeep()
    assert not failing.armed
    assert not conn.in_transaction  # the store ended the transaction the COMMIT left open
    sqlite._conn = conn

    assert await state(sqlite, job_id) is JobState.PENDING  # the expiry never committed
    assert seen == []
    assert await sqlite.housekeep() is False  # expiring wakes nobody
    assert await state(sqlite, job_id) is JobState.EXPIRED
    assert [(t.job_id, t.state) for t in seen] == [(job_id, JobState.EXPIRED)]
