"""PostgreSQL's side of the SQL engine: its dialect, a `Tx` over a psycopg connection, and the
statements only the PostgreSQL store runs (settling a lost COMMIT, refreshing statistics).

The store (`wireframe.store.postgres`) decides when these run; this module only says how.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from wireframe.store.records import JobRecord
from wireframe.store.sql import claim as claim_sql
from wireframe.store.sql.tx import Bulk, Cursor, Dialect, Tx

if TYPE_CHECKING:
    import psycopg


class PostgresDialect(Dialect):
    """PostgreSQL spelling of the engine's non-portable bits."""

    name = "postgresql"
    lock = " FOR UPDATE"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    materialize_pick = True

    def greatest(self, a: str, b: str) -> str:
        """GREATEST(a, b)."""
        return f"GREATEST({a}, {b})"

    def least(self, a: str, b: str) -> str:
        """LEAST(a, b)."""
        return f"LEAST({a}, {b})"

    def lock_of(self, alias: str) -> str:
        """FOR UPDATE OF alias."""
        return f" FOR UPDATE OF {alias}"

    def tags_subset(self) -> str:
        """jsonb containment: every tag of the job is in the worker's list."""
        return "(tags IS NULL OR tags::jsonb <@ ?::jsonb)"

    def reserve_ids(self, tx: Tx, table: str, count: int) -> list[int]:
        """`count` values of the table's sequence, ascending."""
        if table not in ("jobs",):
            raise ValueError(f"reserve_ids: no id sequence for table {table!r}")
        rows = tx.execute(
            f"SELECT nextval('{table}_id_seq') FROM generate_series(1, ?)", (count,)
        ).fetchall()
        return sorted(int(r[0]) for r in rows)

    def lock_name(self, tx: Tx, name: str) -> None:
        """A transaction-scoped advisory lock on the name's hash."""
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 0))", (name,))

    def restart(self, tx: Tx) -> None:
        """ROLLBACK (releasing every lock); the connection begins anew at the next statement."""
        tx.execute("ROLLBACK")


POSTGRES = PostgresDialect()

_placeholders: dict[str, str] = {}


def _translate(sql: str) -> str:
    """`?` placeholders to psycopg's `%s` (a literal `%` doubled); cached per statement."""
    out = _placeholders.get(sql)
    if out is None:
        out = _placeholders[sql] = sql.replace("%", "%%").replace("?", "%s")
    return out


_COPY_MIN = 8
"""Smaller batches for a COPY statement are INSERTed row by row (pipelined) instead."""


def pg_tx(conn: psycopg.Connection[Any]) -> Tx:
    """A Tx over a psycopg connection whose transaction the caller commits."""

    def execute(sql: str, params: Sequence[Any] = (), /) -> Cursor:
        return conn.execute(_translate(sql), tuple(params))

    def executemany(sql: str, rows: Sequence[Sequence[Any]], /) -> None:
        with conn.cursor() as cur:
            cur.executemany(_translate(sql), rows)

    def bulk(statement: Bulk, rows: Sequence[Sequence[Any]]) -> None:
        if statement.columns.startswith("COPY "):
            if len(rows) < _COPY_MIN:
                # A few rows: plain INSERTs in one pipelined round trip, where COPY takes two.
                with conn.cursor() as cur:
                    cur.executemany(_translate(statement.each), rows)
                return
            with conn.cursor() as cur, cur.copy(statement.columns) as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            conn.execute(
                _translate(statement.columns), [list(column) for column in zip(*rows, strict=True)]
            )

    return Tx(execute, executemany, POSTGRES, bulk)


def leased_by(tx: Tx, ids: list[int], token: str, pid: int) -> list[JobRecord]:
    """The jobs among `ids` still leased by the claim that wrote `token` (`claim_sql.leased_by`).

    The claim's server process `pid` may outlive the client's connection (a network partition:
    it never learns that the client has gone) and sit in the claim's transaction, holding the
    rows, until TCP keepalives give up, which can take hours. It is ended first, if it is still
    the transaction holding the rows (its xid, not only its pid, which may have been reused),
    so the lookup does not wait for it; ending it rolls back a COMMIT that never arrived, and a
    COMMIT that did arrive completes first. Any other wait is bounded by `lock_timeout`.
    """
    tx.execute(f"SET LOCAL lock_timeout = '{_SETTLE_LOCK_TIMEOUT}'")
    tx.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ? "
        "AND pid <> pg_backend_pid() AND backend_xid = (SELECT xmax FROM jobs WHERE id = ?)",
        (pid, ids[0]),
    )
    return claim_sql.leased_by(tx, ids, token)


_SETTLE_LOCK_TIMEOUT = "10s"
_SETTLE_WAIT = 10.0


def xact_status(tx: Tx, xid: str, pid: int) -> str | None:
    """How transaction `xid` of server process `pid` ended: committed, aborted (or None).

    The process is ended first if it is still in that transaction (its `backend_xid`, the
    low 32 bits of the full id, not only its pid, which may have been reused): a COMMIT that
    never arrived is rolled back, one being written completes first. The transaction may take
    a moment to end; the wait is bounded by `_SETTLE_WAIT`, after which its status, still
    "in progress", is returned. None means the commit log no longer knows it (wrapped around).
    """
    tx.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ? "
        "AND pid <> pg_backend_pid() "
        "AND backend_xid::text::bigint = ?::xid8::text::numeric % 4294967296",
        (pid, xid),
    )
    deadline = time.monotonic() + _SETTLE_WAIT
    delay = 0.001
    while True:
        row = tx.execute("SELECT pg_xact_status(?::xid8)", (xid,)).fetchone()
        status = None if row is None or row[0] is None else str(row[0])
        if status != "in progress" or time.monotonic() >= deadline:
            return status
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def analyze(tx: Tx) -> None:
    """Refresh the planner's statistics of the jobs table, unless another process is at it.

    A fresh or suddenly busy queue has statistics that describe a table with no pending rows;
    autovacuum refreshes them only after its next nap (a minute by default). Until then plans
    that suit an empty table scan every row. Submitters refresh them after bulk inserts instead.
    """
    got = tx.execute("SELECT pg_try_advisory_xact_lock(hashtextextended('wireframe.analyze', 0))")
    if got.fetchone()[0]:
        tx.execute("ANALYZE jobs")
