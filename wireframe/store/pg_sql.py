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


def fence(tx: Tx, pid: int, started: str) -> bool:
    """End server process `pid` if it still runs; True once it is gone, False if it lingers.

    A process is named by its pid *and* its start time (`backend_start`): after a crash and
    restart, or once it has ended, its pid may belong to somebody else's session, which must
    not be touched. The process of a transaction whose COMMIT went unanswered may still be
    alive (a network partition: the server does not know the client has gone), idle in that
    transaction and able to commit it if the COMMIT is still on its way. Once the process is
    gone, its transaction has ended one way or the other: a COMMIT that never arrived is rolled
    back, one being written completes first. The wait is bounded by `_SETTLE_WAIT`.
    """
    tx.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ? "
        "AND backend_start = ?::timestamptz AND pid <> pg_backend_pid()",
        (pid, started),
    )
    deadline = time.monotonic() + _SETTLE_WAIT
    delay = 0.001
    while True:
        tx.execute("SELECT pg_stat_clear_snapshot()")  # the activity view is cached per transaction
        row = tx.execute(
            "SELECT 1 FROM pg_stat_activity WHERE pid = ? AND backend_start = ?::timestamptz",
            (pid, started),
        ).fetchone()
        if row is None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def committed(tx: Tx, token: str, pid: int, started: str) -> bool | None:
    """Whether the transaction that wrote commit token `token` committed (None: cannot tell yet).

    Its server process (`pid`, `started`) is ended first (`fence`), so the answer is final: a
    token is written only with its transaction, and a crash cannot make one up.
    """
    if not fence(tx, pid, started):
        return None
    return (
        tx.execute("SELECT 1 FROM commit_tokens WHERE token = ?::uuid", (token,)).fetchone()
        is not None
    )


def leased_by(tx: Tx, ids: list[int], token: str, pid: int, started: str) -> list[JobRecord] | None:
    """The jobs among `ids` still leased by the claim that wrote `token` (`claim_sql.leased_by`).

    The claim's server process is ended first (`fence`; None if it lingers), so the claim has
    ended and the rows show its outcome; any other wait is bounded by `lock_timeout`.
    """
    if not fence(tx, pid, started):
        return None
    tx.execute(f"SET LOCAL lock_timeout = '{_SETTLE_LOCK_TIMEOUT}'")
    return claim_sql.leased_by(tx, ids, token)


def prune_tokens(tx: Tx, before: str) -> int:
    """Delete commit tokens older than token `before`, unless another process is at it."""
    got = tx.execute(
        "SELECT pg_try_advisory_xact_lock(hashtextextended('wireframe.tokens.' || "
        "current_schema(), 0))"
    ).fetchone()
    if not got[0]:
        return 0
    return tx.execute("DELETE FROM commit_tokens WHERE token < ?::uuid", (before,)).rowcount


_SETTLE_LOCK_TIMEOUT = "10s"
_SETTLE_WAIT = 10.0


def analyze(tx: Tx) -> None:
    """Refresh the planner's statistics of the jobs table, unless another process is at it.

    A fresh or suddenly busy queue has statistics that describe a table with no pending rows;
    autovacuum refreshes them only after its next nap (a minute by default). Until then plans
    that suit an empty table scan every row. Submitters refresh them after bulk inserts instead.
    """
    got = tx.execute("SELECT pg_try_advisory_xact_lock(hashtextextended('wireframe.analyze', 0))")
    if got.fetchone()[0]:
        tx.execute("ANALYZE jobs")
