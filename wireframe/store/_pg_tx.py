"""The PostgreSQL side of `wireframe.store.transactional`: the application's psycopg connection
(sync or async) on the store's database (`PgBound`), and async connections the store lends for
one transaction (`PgLender`).

Each operation costs two extra statements around the engine's, each one round trip: a prologue
(a savepoint; the connection's database and server, checked against the store's; the store's
schema put on the `search_path` for the transaction) and an epilogue (the savepoint released;
the application's `search_path` put back; a `pg_notify` of the store's channel when workers
should wake, which PostgreSQL delivers only at commit). The application's own `search_path`
never matters: the store's tables are found by its schema.

A sync connection runs the whole operation in a worker thread. An async connection runs the
prologue and epilogue on the event loop, and the engine (synchronous code) in a worker thread
that sends each of its statements back to the loop (asyncio only, like psycopg's async API).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import anyio
import anyio.from_thread
import anyio.to_thread

from wireframe.store.base import Observers
from wireframe.store.errors import ForeignConnectionError
from wireframe.store.pg_sql import PostgresDialect, _translate
from wireframe.store.sql.locks import run_ordered
from wireframe.store.sql.tx import Bulk, Cursor, Tx
from wireframe.store.transactional import Bound, Lent, Op

try:
    import psycopg
    from psycopg.pq import TransactionStatus
    from psycopg.rows import tuple_row
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]

T = TypeVar("T")

_OUTER = "wireframe_op"
"""Taken before the store's search_path: rolling back to it undoes the whole operation."""
_INNER = "wireframe_op_locks"
"""Taken after it: an operation that starts over to reorder its locks rolls back to here."""
Identity = tuple[str, str, int | None]
"""(database, server start time, oid of the store's schema): one schema of one server."""

IDENTITY = (
    "SELECT current_database(), pg_postmaster_start_time()::text, "
    "(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = current_schema())::bigint"
)
"""The identity of the database a store connection is on (its search_path is the schema)."""


class BoundDialect(PostgresDialect):
    """PostgreSQL in someone else's transaction: starting over rolls back to a savepoint (which
    releases the row locks taken since), never the whole transaction."""

    def restart(self, tx: Tx) -> None:
        """ROLLBACK TO SAVEPOINT: the operation's writes and locks are undone, the caller's kept."""
        tx.execute(f"ROLLBACK TO SAVEPOINT {_INNER}")


BOUND = BoundDialect()


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _prologue(schema: str) -> str:
    """Sent in one message with the operation's first statement (client-side parameters)."""
    return (
        f"SAVEPOINT {_OUTER}; "
        "WITH old AS MATERIALIZED (SELECT current_setting('search_path') AS p) "
        "SELECT old.p, current_database(), pg_postmaster_start_time()::text, "
        f"(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = {_literal(schema)})::bigint, "
        f"set_config('search_path', {_literal(schema)}, true) FROM old; "
        f"SAVEPOINT {_INNER}; "
    )


def _identity_of(schema: str) -> str:
    return (
        "SELECT current_database(), pg_postmaster_start_time()::text, "
        f"(SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = {_literal(schema)})::bigint"
    )


def _epilogue(old: str, channel: str | None) -> str:
    notify = f", pg_notify({_literal(channel)}, '')" if channel else ""
    return (
        f"RELEASE SAVEPOINT {_OUTER}; "
        f"SELECT set_config('search_path', {_literal(old)}, true){notify}"
    )


_UNDO = f"ROLLBACK TO SAVEPOINT {_OUTER}; RELEASE SAVEPOINT {_OUTER}"
"""A failed operation: its writes, locks and search_path are undone; the caller's are kept."""


class _Run:
    """One operation on the connection: whether its prologue went out, and what it read."""

    __slots__ = ("found", "old", "opened")

    def __init__(self) -> None:
        self.opened = False
        self.old = ""
        self.found: Identity | None = None

    def read(self, row: Any) -> None:
        self.old, self.found = row[0], (row[1], row[2], row[3])


class _Mismatch(ForeignConnectionError):
    """The connection's database is not the store's (as last known: see `PgBound.run`)."""


class Rows:
    """A cursor's rows, fetched on the event loop, read by the engine in its thread."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        """The next row, or None."""
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        """Every remaining row."""
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def _bulk(execute: Callable[..., Any], executemany: Callable[..., Any]) -> Any:
    def bulk(statement: Bulk, rows: Sequence[Sequence[Any]]) -> None:
        if statement.columns.startswith("COPY "):
            executemany(statement.each, rows)  # a few rows: no COPY in someone else's session
        else:
            execute(statement.columns, [list(column) for column in zip(*rows, strict=True)])

    return bulk


def _status_error(conn: Any, url: str) -> ForeignConnectionError | None:
    """Why the connection cannot take the store's writes now (None: it can)."""
    status = conn.info.transaction_status
    if status == TransactionStatus.INTRANS:
        return None
    if status == TransactionStatus.IDLE and not conn.autocommit:
        return None  # its transaction begins with the store's first statement
    why = {
        TransactionStatus.IDLE: "is in autocommit mode: each statement would commit alone",
        TransactionStatus.INERROR: "is in a failed transaction: roll it back first",
        TransactionStatus.ACTIVE: "is running a query",
    }.get(status, "is broken or closed")
    return ForeignConnectionError(
        f"{url}: the connection {why}; pass a connection inside a transaction "
        f"(`with conn.transaction():`, or autocommit off)"
    )


class PgBound(Bound):
    """Engine operations on a psycopg connection in the caller's transaction."""

    def __init__(
        self,
        conn: Any,
        *,
        url: str,
        schema: str,
        channel: str,
        identity: Identity,
        refresh: Callable[[], Awaitable[Identity]],
        observers: Observers,
        clock: Callable[[], float],
        lent: bool = False,
    ) -> None:
        super().__init__(observers, clock)
        self._conn = conn
        self._lent = lent
        """The store's own transaction (`PgLent`): it ends right after the store's writes, so
        there is nothing to give back to the caller (the search_path reverts at COMMIT, which
        carries the NOTIFY): no epilogue, one round trip less."""
        self._url = url
        self._schema = schema
        self._channel = channel
        self._identity = identity
        self._refresh = refresh
        self._async = isinstance(conn, psycopg.AsyncConnection)
        error = _status_error(conn, url)
        if error is not None:
            raise error

    def _mismatch(self, found: Identity) -> _Mismatch:
        db, _, schema_oid = found
        if db != self._identity[0]:
            where = f"database {db!r}, not the store's {self._identity[0]!r}"
        elif found[1] != self._identity[1]:
            where = f"another PostgreSQL server's database {db!r}"
        else:
            where = f"a database where the store's schema {self._schema!r} is not the same"
            if schema_oid is None:
                where = f"database {db!r}, which has no schema {self._schema!r}"
        return _Mismatch(
            f"{self._url}: the connection is on {where}; a job written through it would never "
            f"reach the store (schema {self._schema!r})"
        )

    async def run(self, op: Op[T], *args: Any) -> T:
        """`op(tx, now, *args)` inside a savepoint of the caller's transaction.

        The store's identity is read once; a connection that does not match it is checked
        again against a fresh one (the server may have restarted since) before it is refused.
        """
        try:
            return await self._run_once(op, args)
        except _Mismatch:
            fresh = await self._refresh()
            if fresh == self._identity:
                raise
            self._identity = fresh
            return await self._run_once(op, args)

    async def _run_once(self, op: Op[T], args: tuple[Any, ...]) -> T:
        if self._async:
            return await self._run_async(op, args)
        return await anyio.to_thread.run_sync(self._run_sync, op, args)

    # -- a sync connection: everything in one worker thread ---------------------------------

    def _opened(self, run: _Run, cur: Any) -> None:
        """Past the prologue's results, to the first statement's; refuse another database."""
        cur.nextset()
        run.read(cur.fetchone())
        cur.nextset()
        cur.nextset()
        assert run.found is not None
        if run.found != self._identity:
            raise self._mismatch(run.found)

    def _sync_tx(self, run: _Run) -> Tx:
        conn = self._conn

        def execute(sql: str, params: Sequence[Any] = (), /) -> Cursor:
            if not run.opened:
                run.opened = True
                cur = psycopg.ClientCursor(conn, row_factory=tuple_row)
                cur.execute(_prologue(self._schema) + _translate(sql), tuple(params))
                self._opened(run, cur)
                return cur
            cur = conn.cursor(row_factory=tuple_row)
            cur.execute(_translate(sql), tuple(params))
            return cur  # type: ignore[no-any-return]

        def executemany(sql: str, rows: Sequence[Sequence[Any]], /) -> None:
            if not run.opened:
                execute("SELECT 1")
            with conn.cursor() as cur:
                cur.executemany(_translate(sql), rows)

        return Tx(execute, executemany, BOUND, _bulk(execute, executemany))

    def _simple(self, sql: str) -> Any:
        cur = self._conn.cursor(row_factory=tuple_row)
        cur.execute(sql, prepare=False)
        while cur.description is None and cur.nextset():
            pass
        return cur.fetchone() if cur.description is not None else None

    def _run_sync(self, op: Op[T], args: tuple[Any, ...]) -> T:
        run = _Run()
        tx = self._sync_tx(run)
        try:
            result = run_ordered(op, tx, self._clock(), args)
        except BaseException as exc:
            if run.opened and not self._conn.broken:
                self._simple(_UNDO)
                if run.found is None:
                    self._check(self._simple(_identity_of(self._schema)), exc)
            raise
        self._ran(tx)
        if run.opened and not self._lent:
            self._simple(_epilogue(run.old, self._channel if tx.wakes else None))
        return result

    def _check(self, row: Any, exc: BaseException) -> None:
        """After an operation failed before its prologue could be read: was it the database?"""
        found = (row[0], row[1], row[2])
        if found != self._identity:
            raise self._mismatch(found) from exc

    # -- an async connection: the engine in a thread, its statements on the loop ------------

    async def _asimple(self, sql: str) -> Any:
        cur = self._conn.cursor(row_factory=tuple_row)
        await cur.execute(sql, prepare=False)
        while cur.description is None and cur.nextset():
            pass
        return await cur.fetchone() if cur.description is not None else None

    async def _aopen(self, run: _Run, sql: str, params: tuple[Any, ...]) -> Rows:
        cur = psycopg.AsyncClientCursor(self._conn, row_factory=tuple_row)
        await cur.execute(_prologue(self._schema) + _translate(sql), params)
        cur.nextset()
        run.read(await cur.fetchone())
        cur.nextset()
        cur.nextset()
        assert run.found is not None
        if run.found != self._identity:
            raise self._mismatch(run.found)
        rows = await cur.fetchall() if cur.description is not None else []
        return Rows(rows, cur.rowcount)

    async def _aexecute(self, run: _Run, sql: str, params: tuple[Any, ...]) -> Rows:
        if not run.opened:
            run.opened = True
            return await self._aopen(run, sql, params)
        cur = self._conn.cursor(row_factory=tuple_row)
        await cur.execute(_translate(sql), params)
        rows = await cur.fetchall() if cur.description is not None else []
        return Rows(rows, cur.rowcount)

    async def _aexecutemany(self, run: _Run, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if not run.opened:
            await self._aexecute(run, "SELECT 1", ())
        async with self._conn.cursor() as cur:
            await cur.executemany(_translate(sql), rows)

    def _async_tx(self, run: _Run) -> Tx:
        def execute(sql: str, params: Sequence[Any] = (), /) -> Cursor:
            return anyio.from_thread.run(self._aexecute, run, sql, tuple(params))

        def executemany(sql: str, rows: Sequence[Sequence[Any]], /) -> None:
            anyio.from_thread.run(self._aexecutemany, run, sql, rows)

        return Tx(execute, executemany, BOUND, _bulk(execute, executemany))

    async def _run_async(self, op: Op[T], args: tuple[Any, ...]) -> T:
        run = _Run()
        tx = self._async_tx(run)
        try:
            result = await anyio.to_thread.run_sync(run_ordered, op, tx, self._clock(), args)
        except BaseException as exc:
            with anyio.CancelScope(shield=True):
                if run.opened and not self._conn.broken:
                    await self._asimple(_UNDO)
                    if run.found is None:
                        self._check(await self._asimple(_identity_of(self._schema)), exc)
            raise
        self._ran(tx)
        if run.opened and not self._lent:
            await self._asimple(_epilogue(run.old, self._channel if tx.wakes else None))
        return result


class PgLent(Lent):
    """A transaction on an async connection from the store's lending pool."""

    def __init__(
        self,
        conn: Any,
        bound: PgBound,
        give_back: Callable[[Any], Awaitable[None]],
        channel: str,
    ) -> None:
        self.connection = conn
        self.bound = bound
        self._give_back = give_back
        self._channel = channel

    async def commit(self) -> None:
        """COMMIT (with the NOTIFY in the same message, if workers should wake), then give the
        connection back."""
        try:
            if self.bound.wakes:
                await self.connection.execute(f"NOTIFY {self._channel}; COMMIT", prepare=False)
            else:
                await self.connection.commit()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.rollback()
            raise
        await self._give_back(self.connection)

    async def rollback(self) -> None:
        """ROLLBACK, then give the connection back."""
        try:
            if not self.connection.closed:
                await self.connection.rollback()
        except psycopg.Error:
            pass
        await self._give_back(self.connection)
        self.bound.rolled_back()


class PgLender:
    """The async connections a PostgreSQL store lends for `ctx.transaction()`: a pool of its
    own (psycopg's async pool, asyncio only), opened on first use."""

    def __init__(self, make_pool: Callable[[], Any]) -> None:
        self._make_pool = make_pool
        self._pool: Any = None

    async def connection(self) -> Any:
        """An idle connection from the pool (opened on first use)."""
        if self._pool is None:
            pool = self._make_pool()
            await pool.open(wait=False)
            self._pool = pool
        return await self._pool.getconn()

    async def give_back(self, conn: Any) -> None:
        """Return a connection to the pool."""
        if self._pool is not None:
            await self._pool.putconn(conn)
        else:
            await conn.close()

    async def close(self) -> None:
        """Close the pool (connections lent now are closed when given back)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()
