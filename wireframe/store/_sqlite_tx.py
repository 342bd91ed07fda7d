"""The SQLite side of `wireframe.store.transactional`: the application's `sqlite3` connection on
the store's file (`SqliteBound`), and connections the store lends for one transaction
(`SqliteLender`).

sqlite3 connections are synchronous and usually tied to the thread that made them, so the
store's statements on the application's connection run on the calling thread: they are few and
local, and the caller's transaction already holds (or is about to take) the write lock. While
such a transaction is open it holds SQLite's single write lock: the store's own writers (claims,
heartbeats, completions, in this process or others) wait for its commit, up to their busy
timeout. Keep these transactions short.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread

from wireframe.store.base import Observers
from wireframe.store.errors import ForeignConnectionError
from wireframe.store.sql.locks import run_ordered
from wireframe.store.sql.tx import SQLITE, Cursor, Tx
from wireframe.store.transactional import Bound, Lent, Op

T = TypeVar("T")

_SAVEPOINT = "wireframe_op"


def main_file(conn: sqlite3.Connection) -> str:
    """The file of the connection's main database ('' for an in-memory or temporary one)."""
    for row in conn.execute("PRAGMA database_list").fetchall():
        if row[1] == "main":
            return str(row[2] or "")
    return ""


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_connection(
    conn: sqlite3.Connection, path: str, url: str, known: set[str] | None = None
) -> None:
    """Refuse a connection that is not on the store's file or not inside a transaction.

    `known`: the names under which connections were found on the store's file already (the
    comparison of files, two `stat` calls, is made once per name).
    """
    if path == ":memory:":
        raise ForeignConnectionError(
            f"{url}: an in-memory SQLite store shares its database with no other connection; "
            f"use a store on a file to submit inside your own transaction"
        )
    found = main_file(conn)
    if known is None or found not in known:
        if not found or not _same_file(found, path):
            where = repr(found) if found else "an in-memory database"
            raise ForeignConnectionError(
                f"{url}: the connection is on {where}, not on the store's file {path!r}; a job "
                f"written through it would never reach the store"
            )
        if known is not None:
            known.add(found)
    if not conn.in_transaction:
        raise ForeignConnectionError(
            f"{url}: the connection is not in a transaction; begin one first "
            f"(conn.execute('BEGIN IMMEDIATE')) so that the job commits with your writes"
        )


def _tx(conn: sqlite3.Connection) -> Tx:
    """A Tx over `conn` whose rows are plain tuples, whatever the connection's row factory."""

    def execute(sql: str, params: Sequence[Any] = (), /) -> Cursor:
        cur = conn.cursor()
        cur.row_factory = None
        return cur.execute(sql, params)

    def executemany(sql: str, rows: Sequence[Sequence[Any]], /) -> Any:
        cur = conn.cursor()
        return cur.executemany(sql, rows)

    return Tx(execute, executemany, SQLITE)


class SqliteBound(Bound):
    """Engine operations on a sqlite3 connection in the caller's transaction, on its thread."""

    def __init__(
        self, conn: sqlite3.Connection, observers: Observers, clock: Callable[[], float]
    ) -> None:
        super().__init__(observers, clock)
        self._conn = conn

    async def run(self, op: Op[T], *args: Any) -> T:
        """`op(tx, now, *args)` inside a savepoint of the caller's transaction."""
        await anyio.lowlevel.checkpoint()  # before the work: a cancel leaves nothing done
        conn = self._conn
        tx = _tx(conn)
        conn.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            result = run_ordered(op, tx, self._clock(), args)
        except BaseException:
            conn.execute(f"ROLLBACK TO {_SAVEPOINT}")
            conn.execute(f"RELEASE {_SAVEPOINT}")
            raise
        conn.execute(f"RELEASE {_SAVEPOINT}")
        self._ran(tx)
        return result


class SqliteLent(Lent):
    """A transaction (BEGIN IMMEDIATE) on a connection the store lends."""

    def __init__(self, lender: SqliteLender, conn: sqlite3.Connection) -> None:
        self._lender = lender
        self.connection = conn
        self.bound = SqliteBound(conn, lender.observers, lender.clock)

    async def commit(self) -> None:
        """COMMIT, then give the connection back."""
        conn = self.connection
        try:
            conn.execute("COMMIT")
        except BaseException:
            await self.rollback()
            raise
        self._lender.give_back(conn)

    async def rollback(self) -> None:
        """ROLLBACK (if still open), then give the connection back."""
        conn = self.connection
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
        except sqlite3.Error:
            conn.close()
        else:
            self._lender.give_back(conn)
        self.bound.rolled_back()


class SqliteLender:
    """Connections to the store's file, lent one transaction at a time and kept for reuse."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        observers: Observers,
        clock: Callable[[], float],
        busy_timeout: float,
    ) -> None:
        self._connect = connect
        self._busy_ms = int(busy_timeout * 1000)
        self.observers = observers
        self.clock = clock
        self._idle: list[sqlite3.Connection] = []
        self._closed = False

    async def lend(self) -> SqliteLent:
        """A connection inside BEGIN IMMEDIATE: on the event loop if the write lock is free at
        once, else waiting for it in a worker thread, up to the store's busy timeout."""
        self._closed = False
        conn = self._idle.pop() if self._idle else await anyio.to_thread.run_sync(self._connect)
        try:
            await anyio.lowlevel.checkpoint()
            if not self._begin_now(conn):
                await anyio.to_thread.run_sync(conn.execute, "BEGIN IMMEDIATE")
        except BaseException:
            conn.close()
            raise
        return SqliteLent(self, conn)

    def _begin_now(self, conn: sqlite3.Connection) -> bool:
        """BEGIN IMMEDIATE without waiting; False if another connection holds the lock."""
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return False
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        return True

    def give_back(self, conn: sqlite3.Connection) -> None:
        """Keep an idle connection for the next transaction (closed if the store is)."""
        conn.row_factory = None
        if self._closed or len(self._idle) >= _KEEP:
            conn.close()
        else:
            self._idle.append(conn)

    def close(self) -> None:
        """Close the idle connections; connections lent now close when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_KEEP = 8
"""Idle lent connections kept open for reuse."""
