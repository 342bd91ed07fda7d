"""The PostgreSQL store: many worker processes on many machines share one database.

The store runs the same transition engine as SQLite (`wireframe.store.sql.*`, sync functions over
a `Tx`) on psycopg 3 *sync* connections from a `psycopg_pool.ConnectionPool`, each operation in
a worker thread (`anyio.to_thread`). One engine means one behaviour on every database, and the
store works on asyncio and on trio alike. PostgreSQL-specific parts live in `PostgresDialect`:
`FOR UPDATE SKIP LOCKED` claims, row locks where SQLite's single writer made them implicit,
`GREATEST`/`LEAST`, jsonb tag containment, sequence ids and advisory locks.

Times come from the database clock (`clock_timestamp()` as epoch seconds), so leases agree across
machines; times the scheduler computes itself (delays, ttl, retry backoff) use the client clock,
which only shifts them by the clocks' skew.

An operation retries while the server is unreachable (`reconnect_timeout`; a server that refuses
the connection fails it at once), stops retrying when its caller is cancelled or the store
closed, and settles a COMMIT that went unanswered by what the transaction itself wrote (a commit
token, or a claim's token on its rows): see `_call`.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import os
import random
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Self, TypeVar, cast

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import attrs

from wireframe.store._pg_calls import (
    CLOSED,
    Call,
    Conflicts,
    Outage,
    reason,
    refusal,
    run_in_thread,
)
from wireframe.store._pg_options import DEFAULT_SCHEMA as DEFAULT_SCHEMA
from wireframe.store._pg_options import Timeouts as Timeouts
from wireframe.store._pg_options import connect_kwargs, connect_timeout_of, timeouts
from wireframe.store._pg_options import parse_url as parse_url
from wireframe.store._pg_options import redact as redact
from wireframe.store._pg_poollog import quiet
from wireframe.store._pg_tx import IDENTITY, Identity, PgBound, PgLender, PgLent
from wireframe.store.base import Chooser, Observers
from wireframe.store.engine import EngineStore, finish_then_claim, without_now
from wireframe.store.errors import ForeignConnectionError, NoStoreError, StoreError
from wireframe.store.pg_sql import analyze, committed, leased_by, pg_tx, prune_tokens
from wireframe.store.records import (
    ClaimRequest,
    JobRecord,
    NewJob,
    Outcome,
    SubmitResult,
)
from wireframe.store.sql import claim as claim_sql
from wireframe.store.sql import finish as finish_sql
from wireframe.store.sql import flows as submit_sql
from wireframe.store.sql import schema
from wireframe.store.sql.locks import run_ordered
from wireframe.store.sql.tx import Tx
from wireframe.store.transactional import Lent

try:
    import psycopg
    import psycopg.errors
    import psycopg_pool
except ImportError:  # pragma: no cover - depends on the installed extras
    psycopg = None  # type: ignore[assignment]
    psycopg_pool = None  # type: ignore[assignment]

T = TypeVar("T")
log = logging.getLogger("wireframe.store")


class _Rerun:
    """What a settle returns when the transaction did not commit: run the operation again."""


_RERUN = _Rerun()


@attrs.frozen
class Sent:
    """A transaction whose COMMIT went unanswered, and what tells whether it committed."""

    pid: int
    """Its server process."""
    started: str | None
    """When that process started (with the pid, it names the process: pids are reused)."""
    token: str | None
    """The commit token sent with the COMMIT (if the settle asked for one)."""
    at: float
    """When the COMMIT was sent (`time.monotonic()`)."""


Settle = Callable[[T, Sent, Call], "T | _Rerun"]
"""Given what a transaction returned before its COMMIT went unanswered, how it was sent and the
operation's `Call`: the result to report if it committed, or _RERUN if it did not."""

_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"
_SKEW_EVERY = 10.0
_SLICE = 0.1
"""Longest wait for a pooled connection between two looks at whether to stop."""
_MAX_CONFLICTS = 20
_TOKEN_KEEP = 900.0
"""Commit tokens are deleted this long (seconds) after their COMMIT (`housekeep`)."""
_TOKEN_TRUST = _TOKEN_KEEP - 300.0
"""A token not found later than this after its COMMIT may have been deleted: no verdict."""
_PRUNE_EVERY = 60.0

_POOL_RECONNECT = 2.0
"""How long the pool retries a connection by itself (its backoff doubles each time: 1 s, 2 s,
4 s...) before it leaves the next one to the next operation waiting for a connection: while
the server is down, a connection is tried about once a second, so the store is back within a
second or so of the server, however long it was away."""

_RETRY_TX = ("40001", "40P01", "23505")
"""Serialization failure, deadlock, unique violation (a concurrent submit of the same key)."""


class _Lost(Exception):
    """The connection failed before COMMIT was sent: nothing was written."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _CommitLost(_Lost):
    """The connection failed while COMMIT was in flight: the outcome is unknown."""

    def __init__(self, cause: BaseException, result: Any, tx: Tx, sent: Sent) -> None:
        super().__init__(cause)
        self.result = result
        self.tx = tx
        self.sent = sent


def _lost(exc: psycopg.Error, conn: psycopg.Connection[Any]) -> bool:
    """Whether an error of a statement means the connection (not the transaction) failed."""
    if exc.sqlstate in _RETRY_TX:
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) or conn.broken


class PostgresStore(EngineStore):
    """Jobs in a PostgreSQL schema, shared by worker processes on many machines.

    Timeouts, in seconds, as keyword arguments or query parameters of the URL (the keyword
    wins): `reconnect_timeout` (default 120): how long an operation retries while PostgreSQL is
    unreachable before it raises StoreError; `idle_in_transaction_timeout` (default 60, 0: off):
    the server ends a store session that sits this long inside a transaction without a word
    (its process frozen), which releases the rows it locked; `keepalive_timeout` (default 60,
    0: the system's): a connection whose other end stops answering is dropped after about this
    long; `connect_timeout` (default 10, libpq's own URL parameter): how long `open()` waits
    for the server.

    An outage is logged once, when the store loses the server (WARNING), and once when it has
    it back (INFO, with how long it lasted). A server that refuses the connection (a wrong
    password, an unknown role or database) is no outage: `open()` and the operations raise
    StoreError at once.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        clock: Callable[[], float] | None = None,
        pool_size: int = 4,
        connect_timeout: float | None = None,
        reconnect_timeout: float | None = None,
        idle_in_transaction_timeout: float | None = None,
        keepalive_timeout: float | None = None,
        create: bool = True,
    ) -> None:
        if psycopg is None or psycopg_pool is None:  # pragma: no cover
            raise StoreError(
                f"{redact(url)}: the PostgreSQL store needs psycopg; "
                f"install it with `pip install 'wireframe[postgres]'`"
            )
        self._conninfo, self.schema = parse_url(url, schema)
        self.url = redact(url)
        self.clock = clock
        self.create = create
        """False: `open()` raises NoStoreError for a schema without the store's tables instead
        of creating them."""
        if pool_size < 1:
            raise ValueError(f"PostgresStore pool_size must be >= 1, got {pool_size!r}")
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout_of(url, connect_timeout)
        self._timeouts = timeouts(
            url,
            {
                "reconnect_timeout": reconnect_timeout,
                "idle_in_transaction_timeout": idle_in_transaction_timeout,
                "keepalive_timeout": keepalive_timeout,
            },
        )
        self._connect_kwargs = connect_kwargs(self._conninfo, self._timeouts, self._connect_timeout)
        self.channel = f"wireframe_{self.schema}"[:63]
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None
        self._limiter = anyio.CapacityLimiter(pool_size)
        self._lock = threading.Lock()
        self._waiters: dict[int, tuple[anyio.lowlevel.EventLoopToken, anyio.Event]] = {}
        self._calls: set[Call] = set()
        self._started: weakref.WeakKeyDictionary[psycopg.Connection[Any], str] = (
            weakref.WeakKeyDictionary()
        )
        self._outage = Outage(self.url, self._timeouts.reconnect_timeout)
        self._connects = _Connects()
        self._conflicts = Conflicts(self.url)
        self._generation = 0
        self._claim_generation = 0
        self._listener: threading.Thread | None = None
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._observers = Observers()
        self._inserted = 0
        self._skew = 0.0
        self._skew_due = 0.0
        self._next_analyze = 0.0
        self._next_prune = 0.0
        self._identity: Identity | None = None
        self._lender = PgLender(self._lending_pool)

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, schema={self.schema!r})"

    @property
    def timeouts(self) -> Timeouts:
        """The store's timeouts (reconnect, idle in transaction, keepalive), in seconds."""
        return self._timeouts

    @property
    def connect_timeout(self) -> float:
        """Seconds `open()` waits for the server to accept a connection (the keyword, else the
        URL's `connect_timeout`, else 10); a server that refuses it fails the open at once."""
        return self._connect_timeout

    @property
    def reconnect_timeout(self) -> float:
        """Seconds an operation retries while PostgreSQL is unreachable before it fails."""
        return self._timeouts.reconnect_timeout

    @property
    def conflict_retries(self) -> dict[str, int]:
        """Transactions run again after a conflict, by sqlstate (40P01 deadlock, 40001
        serialization failure, 23505 a concurrent insert of the same key), since the store was
        made."""
        return self._conflicts.counts()

    # -- plumbing ---------------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET search_path TO {self.schema}")
        # With its pid, its start time names the server process (`pg_sql.fence`).
        row = conn.execute(
            "SELECT backend_start::text FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        ).fetchone()
        conn.commit()
        if row is not None and row[0] is not None:
            self._started[conn] = str(row[0])

    def _open_sync(self, call: Call) -> None:
        self._connects = _Connects()  # nothing a pool of an earlier open() saw
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            kwargs={"autocommit": False, **self._connect_kwargs},
            connection_class=self._connects.connection_class(),
            configure=self._configure,
            timeout=self._connect_timeout,
            reconnect_timeout=_POOL_RECONNECT,
            name=f"wireframe-{self.schema}",
        )
        quiet(pool)
        pool.open(wait=False)
        try:
            try:
                conn = self._getconn(pool, call, self._connect_timeout)
            except _Lost as lost:
                raise StoreError(
                    f"{self.url}: cannot connect to PostgreSQL within "
                    f"{self._connect_timeout:g} s: {reason(lost.cause)}"
                ) from None
            try:
                self._migrate(conn)
            finally:
                pool.putconn(conn)
            call.check(self.url)  # open() was cancelled meanwhile: leave nothing open
        except BaseException:
            pool.close()
            raise
        self._pool = pool

    def _migrate(self, conn: psycopg.Connection[Any]) -> None:
        # Many processes may start at once: one migrates, the others wait and find it done.
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"wireframe.migrate.{self.schema}",),
        )
        if not self.create:
            row = conn.execute("SELECT to_regclass(%s)", (f"{self.schema}.schema_version",))
            if row.fetchone() == (None,):
                conn.rollback()
                raise NoStoreError(
                    f"no store at {self.url} (schema {self.schema!r} holds no wireframe tables); "
                    f"`wireframe migrate` or a worker creates it"
                )
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
        conn.execute(f"SET LOCAL search_path TO {self.schema}")
        schema.migrate(pg_tx(conn), self.url, schema.PG_MIGRATIONS)
        conn.commit()

    def _call(
        self,
        op: Callable[..., T],
        args: tuple[Any, ...],
        retry_commit: bool,
        settle: Settle[T] | None = None,
        call: Call | None = None,
    ) -> T:
        """Run `op(tx, now, *args)` in one transaction; reconnect and retry transient failures.

        Every operation, a one-statement claim included, runs inside BEGIN ... COMMIT: a
        connection lost before COMMIT leaves nothing behind, so retrying is safe. A connection
        lost *during* COMMIT leaves the outcome unknown: the server may have committed. Then
        `settle`, if given, finds out (`_settled`), and the operation runs again if it did not
        commit. Without `settle`, the operation runs again if `retry_commit` (it must be
        harmless to apply twice), else the caller gets a StoreError saying the outcome is
        unknown. Retries stop when `call` is told to stop (its caller cancelled, the store
        closed) or after `reconnect_timeout` seconds of failures.
        """
        call = call if call is not None else Call(str(getattr(op, "__name__", "operation")))
        deadline = time.monotonic() + self._timeouts.reconnect_timeout
        delay = 0.01
        conflicts = 0
        while True:
            call.check(self.url)
            began = time.monotonic()
            try:
                result = self._attempt(op, args, settle, call, deadline)
            except _CommitLost as lost:
                settled = self._settled(lost, settle, retry_commit, call)
                if not isinstance(settled, _Rerun):
                    return settled
                if settle is not None:
                    continue  # it did not commit, and the server is reachable: run it again
                cause = lost.cause
            except _Lost as lost:
                cause = lost.cause
            except psycopg.Error as exc:
                if exc.sqlstate not in _RETRY_TX or conflicts >= _MAX_CONFLICTS:
                    raise StoreError(f"{self.url}: {_one_line(exc)}") from exc
                conflicts += 1
                self._conflicts.note(exc.sqlstate, call.name)
                call.pause(random.uniform(0, 0.002 * conflicts), self.url)
                continue
            else:
                self._outage.passed(began)
                return result
            self._outage.failed(reason(cause), began)
            if time.monotonic() + delay > deadline:
                retry_for = self._timeouts.reconnect_timeout
                raise StoreError(
                    f"{self.url}: PostgreSQL unreachable for {retry_for:g} s: {reason(cause)}"
                ) from cause
            call.pause(delay * random.uniform(0.5, 1.0), self.url)
            delay = min(delay * 2, 2.0)

    def _settled(
        self, lost: _CommitLost, settle: Settle[T] | None, retry_commit: bool, call: Call
    ) -> T | _Rerun:
        """What to report of a transaction whose COMMIT went unanswered (_RERUN: run it again)."""
        if settle is None:
            if retry_commit:
                return _RERUN
            raise StoreError(
                f"{self.url}: the connection was lost while committing {call.name}; the change "
                f"may or may not have been applied ({reason(lost.cause)})"
            ) from lost.cause
        settled = settle(cast(T, lost.result), lost.sent, call)
        if not isinstance(settled, _Rerun):
            self._observers.collect(lost.tx.transitions)
        return settled

    def _attempt(
        self,
        op: Callable[..., T],
        args: tuple[Any, ...],
        settle: Settle[T] | None,
        call: Call,
        deadline: float,
    ) -> T:
        """One run of the transaction on a pooled connection (`_call` retries it until
        `deadline`, which also bounds the wait for a connection, to at least a second)."""
        pool = self._pool
        if pool is None:
            call.check(self.url)
            raise StoreError(f"{self.url}: the store is not open (call `await store.open()`)")
        wait = min(self._connect_timeout, max(deadline - time.monotonic(), 1.0))
        conn = self._getconn(pool, call, wait)
        try:
            return self._transaction(conn, op, args, getattr(settle, "writes_token", False))
        finally:
            pool.putconn(conn)

    def _getconn(
        self, pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]], call: Call, wait: float
    ) -> psycopg.Connection[Any]:
        """A pooled connection within `wait` seconds, waited for in short slices so that a
        stopped call stops soon, and a server refusing the pool's connections (a wrong
        password, an unknown role or database) fails it at once with a StoreError."""
        deadline = time.monotonic() + wait
        while True:
            call.check(self.url)
            try:
                return pool.getconn(timeout=max(0.001, min(_SLICE, deadline - time.monotonic())))
            except psycopg_pool.PoolTimeout as exc:
                refused = self._connects.refused
                if refused is not None:
                    raise StoreError(
                        f"{self.url}: PostgreSQL refused the connection: {refused}"
                    ) from None
                if time.monotonic() >= deadline:
                    why = psycopg_pool.PoolTimeout(f"no connection within {wait:g} s")
                    raise _Lost(self._connects.error or why) from exc
            except psycopg.OperationalError as exc:  # the pool was closed
                raise _Lost(exc) from exc

    def _transaction(
        self,
        conn: psycopg.Connection[Any],
        op: Callable[..., T],
        args: tuple[Any, ...],
        token: bool,
    ) -> T:
        """Run `op` and COMMIT (with a commit token if `token`), raising _Lost on a lost link."""
        tx = pg_tx(conn)
        try:
            result = run_ordered(op, tx, self._op_now(op, conn), args)
        except psycopg.Error as exc:
            _rollback(conn)
            if _lost(exc, conn):
                raise _Lost(exc) from exc
            raise
        except BaseException:
            _rollback(conn)
            raise
        sent = Sent(
            conn.info.backend_pid,
            self._started.get(conn),
            self._token() if token else None,
            time.monotonic(),
        )
        try:
            self._commit(conn, sent.token, tx.wakes)
        except psycopg.Error as exc:
            if conn.broken or conn.closed or exc.sqlstate is None:
                raise _CommitLost(exc, result, tx, sent) from exc
            _rollback(conn)
            raise
        self._observers.collect(tx.transitions)
        return result

    def _commit(self, conn: psycopg.Connection[Any], token: str | None, wakes: bool) -> None:
        """COMMIT, sent in one message with the commit token and the NOTIFY, if any."""
        if token is None and not wakes:
            conn.commit()
            return
        parts = [f"INSERT INTO commit_tokens (token) VALUES ('{token}')"] if token else []
        if wakes:
            parts.append(f"NOTIFY {self.channel}")
        parts.append("COMMIT")
        conn.execute("; ".join(parts), prepare=False)

    def _op_now(self, op: Callable[..., Any], conn: psycopg.Connection[Any]) -> float:
        if self.clock is not None:
            return self.clock()
        if getattr(op, "needs_now", True):
            return self._now(conn)
        return 0.0

    def _now(self, conn: psycopg.Connection[Any]) -> float:
        """The database clock, read through this machine's clock and their measured offset.

        Every process reads the same clock, so leases agree across machines; the offset is
        measured again every `_SKEW_EVERY` seconds rather than costing a round trip each time.
        """
        if time.monotonic() >= self._skew_due:
            before = time.time()
            row = conn.execute(_NOW).fetchone()
            after = time.time()
            if row is not None:
                self._skew = float(row[0]) - (before + after) / 2
                self._skew_due = time.monotonic() + _SKEW_EVERY
        return time.time() + self._skew

    def _token(self, age: float = 0.0) -> str:
        """A new commit token: a UUID whose first 48 bits are the time in ms (`age` s ago).

        With no random part (`age` given), the smallest token of that time: pruning deletes
        the tokens below it.
        """
        ms = int((time.time() + self._skew - age) * 1000)
        rand = 0 if age else int.from_bytes(os.urandom(10), "big")
        return str(uuid.UUID(int=(ms << 80) | rand))

    async def _op(
        self,
        op: Callable[..., T],
        *args: Any,
        write: bool = True,
        inline: bool = False,
        retry_commit: bool = True,
    ) -> T:
        """One transaction in a worker thread, from the pool (`write`, `inline`: no matter).

        A write that must not be applied twice (`retry_commit` false: retry, firing a schedule,
        spawning a durable child) is settled by its commit token if its COMMIT loses the
        connection, like submit and finish.
        """
        name = sys._getframe(1).f_code.co_name  # the Store method: names it in errors and logs
        settle: Settle[T] | None = None
        if not retry_commit:
            settle = cast(Settle[T], self._settle_token(object))
        return await self._run(op, *args, retry_commit=retry_commit, settle=settle, name=name)

    async def _run(
        self,
        op: Callable[..., T],
        *args: Any,
        retry_commit: bool = True,
        settle: Settle[T] | None = None,
        name: str | None = None,
    ) -> T:
        call = Call(name or str(getattr(op, "__name__", "operation")))
        with self._lock:
            self._calls.add(call)
        try:
            work = functools.partial(self._call, op, args, retry_commit, settle, call)
            return await run_in_thread(call, work, self._limiter)
        finally:
            with self._lock:
                self._calls.discard(call)
            self._observers.deliver()

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create the schema if needed and migrate it under an advisory lock.

        A cancelled open returns at once; a connection attempt under way is left to end by
        itself (within `connect_timeout`) and closes what it opened.
        """
        if self._pool is None:
            self._stop = threading.Event()
            call = Call("open")
            limiter = anyio.to_thread.current_default_thread_limiter()
            await run_in_thread(call, functools.partial(self._open_sync, call), limiter)

    async def close(self) -> None:
        """Close the pool and stop listening; operations still retrying raise StoreError.

        The store may be opened again.
        """
        pool, self._pool = self._pool, None
        with self._lock:
            calls = list(self._calls)
        for call in calls:
            call.end(CLOSED)
        self._stop.set()
        self._listener = None
        self._identity = None
        await self._lender.close()
        if pool is not None:
            await anyio.to_thread.run_sync(pool.close)

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the application's transactions ---------------------------------------------------

    async def bind(self, connection: Any, *, lent: bool = False) -> PgBound:
        """Store operations on the application's psycopg connection (sync or async) inside its
        transaction (`wireframe.store.transactional`). ForeignConnectionError for a connection
        to another database or server, or one that is not in a transaction."""
        kinds = (psycopg.Connection, psycopg.AsyncConnection)
        if not isinstance(connection, kinds):
            raise ForeignConnectionError(
                f"{self.url}: expected a psycopg Connection or AsyncConnection, "
                f"got {type(connection).__name__}"
            )
        return PgBound(
            connection,
            url=self.url,
            schema=self.schema,
            channel=self.channel,
            identity=await self.identity(),
            refresh=lambda: self.identity(fresh=True),
            observers=self._observers,
            clock=self._bound_now,
            lent=lent,
        )

    async def identity(self, *, fresh: bool = False) -> Identity:
        """The store's database, server (its start time) and schema oid, read once."""
        if self._identity is None or fresh:
            row = await self._run(without_now(_identity), name="identity")
            self._identity = (str(row[0]), str(row[1]), None if row[2] is None else int(row[2]))
        return self._identity

    def _bound_now(self) -> float:
        return self.clock() if self.clock is not None else time.time() + self._skew

    async def lend(self) -> Lent:
        """An async psycopg connection to the store's database, for one transaction of the
        application's writes and the store's (`wireframe.store.transactional.Lent`; asyncio)."""
        if self._pool is None:
            raise StoreError(f"{self.url}: the store is not open (call `await store.open()`)")
        conn = await self._lender.connection()
        try:
            bound = await self.bind(conn, lent=True)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._lender.give_back(conn)
            raise
        return PgLent(conn, bound, self._lender.give_back, self.channel)

    def _lending_pool(self) -> Any:
        pool = psycopg_pool.AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            kwargs={"autocommit": False, **self._connect_kwargs},
            timeout=self._connect_timeout,
            name=f"wireframe-{self.schema}-lent",
        )
        quiet(pool)
        return pool

    # -- jobs -------------------------------------------------------------------------------

    async def submit(self, jobs: Sequence[NewJob]) -> list[SubmitResult]:
        """Insert jobs in one transaction; refresh the statistics after bulk inserts.

        A submit whose COMMIT loses its connection is settled by its commit token
        (`_settle_token`): if it committed, the results it computed before COMMIT are returned
        (ids, duplicates found, schedules created: exactly what the database now holds, the
        batch being one transaction, all or nothing); if it did not, it runs again, from the
        start (dedup keys looked up again, new ids reserved). A caller never gets an error
        that leaves it guessing whether resubmitting would duplicate the jobs, unless the
        outcome cannot be found out (then the StoreError says so).
        """
        if not jobs:
            return []
        results = await self._run(
            submit_sql.submit,
            list(jobs),
            settle=self._settle_token(list[SubmitResult]),
            name="submit",
        )
        self._inserted += len(jobs)
        if self._inserted >= _ANALYZE_ROWS and time.monotonic() >= self._next_analyze:
            self._inserted = 0
            self._next_analyze = time.monotonic() + _ANALYZE_EVERY
            await self._run(without_now(analyze), name="analyze")
        return results

    async def housekeep(self) -> bool:
        """Wake due jobs, expire stale ones, reclaim expired leases; delete old commit tokens."""
        ready = await super().housekeep()
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + _PRUNE_EVERY
            await self._run(without_now(prune_tokens), self._token(_TOKEN_KEEP), name="housekeep")
        return ready

    async def claim(self, request: ClaimRequest, chooser: Chooser | None = None) -> list[JobRecord]:
        """Lease pending jobs with FOR UPDATE SKIP LOCKED; a claim is never lost with its COMMIT.

        Each claim writes a token of its own on the rows it leases. When the connection drops
        while COMMIT is in flight, `_settle_claim` reconnects, makes sure the claim's server
        process has ended, and looks for the token: the jobs that carry it are returned as if
        the COMMIT had been acknowledged (the leases are this worker's, and running them costs
        nothing more); if none does, the claim did not commit and runs again. Releasing found
        jobs back to pending instead would have to undo the attempt counter, a second write
        whose own COMMIT could be lost the same way; returning them only reads.
        """
        self._claim_generation = self._generation
        if request.housekeep:
            await self.housekeep()
        request = attrs.evolve(request, housekeep=False)
        token = uuid.uuid4().hex
        return await self._run(
            claim_sql.claim,
            request,
            chooser,
            token,
            settle=self._settle_claim(token),
            name="claim",
        )

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply fenced outcomes; one whose COMMIT loses its connection reports what it did.

        The outcomes are fenced on their leases, so running them again after a lost COMMIT
        never applies one twice; but if the lost transaction did commit, the second run finds
        the leases gone and reports False, and the worker would take outcomes it wrote for
        rejected ones. Instead `_settle_token` finds out whether the transaction committed: the
        rule is that an outcome counts as applied exactly when the transaction that applied it
        committed. Committed: the list it computed before COMMIT is returned (True for each
        outcome it applied, False for each lease it found gone, both now the database's
        state). Not committed: nothing was written, and finish runs again. Looking at the rows
        instead would be ambiguous: a released attempt keeps its number, so a later claim of
        the same job can reopen and close the same attempt with the same outcome.
        """
        if not outcomes:
            return []
        return await self._run(
            finish_sql.finish,
            list(outcomes),
            settle=self._settle_token(list[bool]),
            name="finish",
        )

    async def finish_and_claim(
        self, outcomes: Sequence[Outcome], request: ClaimRequest, chooser: Chooser | None = None
    ) -> tuple[list[bool], list[JobRecord]]:
        """Apply fenced outcomes and lease pending jobs in one transaction.

        Settled like a finish if its COMMIT loses the connection (`_settle_token`): committed,
        the outcomes it applied and the jobs it leased are returned; not committed, it runs
        again. The claim writes its token on its rows like any claim.
        """
        self._claim_generation = self._generation
        request = attrs.evolve(request, housekeep=False)
        return await self._run(
            finish_then_claim,
            list(outcomes),
            request,
            chooser,
            uuid.uuid4().hex,
            settle=self._settle_token(tuple[list[bool], list[JobRecord]]),
            name="finish_and_claim",
        )

    # -- settling a COMMIT that went unanswered ---------------------------------------------

    def _settle_token(self, kind: type[T]) -> Settle[T]:
        """Settle a write whose COMMIT went unanswered by the commit token sent with it.

        The token is a random UUID the transaction inserts into `commit_tokens` in the same
        message as its COMMIT (`_commit`): it is in the table exactly when the transaction
        committed, and only then (a crash cannot make it up, where a transaction id may be
        handed out again after a crash). After a lost COMMIT the old server process is ended
        first if it still runs (`pg_sql.fence`), so the transaction can no longer commit; then
        the token is looked up. Found: the result it computed is returned. Not found: nothing
        it wrote is in the database, and it runs again. `kind` only types the result.
        """

        def settle(result: T, sent: Sent, call: Call) -> T | _Rerun:
            assert sent.token is not None
            args = (sent.token, sent.pid, sent.started)
            if self._look_up(committed, args, sent, call):
                return result
            if time.monotonic() - sent.at > _TOKEN_TRUST:
                raise self._unknown(call, "too long ago: its commit token may have been deleted")
            return _RERUN

        settle.writes_token = True  # type: ignore[attr-defined]
        return settle

    def _settle_claim(self, token: str) -> Settle[list[JobRecord]]:
        """A claim whose COMMIT went unanswered: the jobs it holds if it committed, else rerun."""

        def settle(claimed: list[JobRecord], sent: Sent, call: Call) -> list[JobRecord] | _Rerun:
            if not claimed:
                return claimed  # it leased nothing: committed or not, the outcome is the same
            ids = [job.id for job in claimed]
            found = self._look_up(leased_by, (ids, token, sent.pid, sent.started), sent, call)
            held = {job.id: job for job in found}
            if not held:
                return _RERUN
            return [held[job_id] for job_id in ids if job_id in held]

        return settle

    def _look_up(
        self, fn: Callable[..., T | None], args: tuple[Any, ...], sent: Sent, call: Call
    ) -> T:
        """Run a settling lookup `fn(tx, *args)`; a StoreError if it cannot give a verdict."""
        if sent.started is None:
            raise self._unknown(call, f"its server process {sent.pid} cannot be told apart")
        try:
            found = self._call(without_now(fn), args, True, call=call)
        except StoreError as exc:
            raise self._unknown(call, str(exc)) from exc
        if found is None:
            raise self._unknown(call, f"its server process {sent.pid} would not end")
        return found

    def _unknown(self, call: Call, why: str) -> StoreError:
        return StoreError(
            f"{self.url}: the connection was lost while committing {call.name}, and whether it "
            f"was applied cannot be found out ({why})"
        )

    # -- wake-ups ---------------------------------------------------------------------------

    async def wait_for_work(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return on a NOTIFY from any process, or after a jittered `timeout` (fallback poll)."""
        if self._pool is None:
            await anyio.sleep(timeout)
            return
        self._ensure_listener()
        if self._generation != self._claim_generation:
            # A notification arrived since the last claim started: look again at once.
            self._claim_generation = self._generation
            await anyio.lowlevel.checkpoint()
            return
        event = anyio.Event()
        key = id(event)
        with self._lock:
            self._waiters[key] = (anyio.lowlevel.current_token(), event)
        try:
            with anyio.move_on_after(timeout * random.uniform(0.8, 1.0)):
                await event.wait()
        finally:
            with self._lock:
                self._waiters.pop(key, None)

    def _ensure_listener(self) -> None:
        if self._listener is None or not self._listener.is_alive():
            # In the caller's context: its lines name the service and task, like the operations'.
            thread = threading.Thread(
                target=contextvars.copy_context().run,
                args=(self._listen, self._stop),
                name=f"wireframe-listen-{self.schema}",
                daemon=True,
            )
            self._listener = thread
            thread.start()

    def _wake_all(self) -> None:
        with self._lock:
            self._generation += 1
            waiters = list(self._waiters.values())
        for token, event in waiters:
            with contextlib.suppress(Exception):  # that event loop has finished
                anyio.from_thread.run_sync(event.set, token=token)

    def _listen(self, stop: threading.Event) -> None:
        """The listening connection: wake waiters on NOTIFY; reconnect with backoff.

        Its failures and reconnections count in the store's one outage (`Outage`), like the
        operations'.
        """
        delay = 0.05
        conn: psycopg.Connection[Any] | None = None
        while not stop.is_set():
            began = time.monotonic()
            try:
                if conn is None:
                    conn = psycopg.connect(self._conninfo, autocommit=True, **self._connect_kwargs)
                    conn.execute(f"LISTEN {self.channel}")
                    self._listening.set()
                    self._outage.passed(began)
                    delay = 0.05
                    self._wake_all()  # notifications may have been missed while disconnected
                for _ in conn.notifies(timeout=0.5):
                    self._wake_all()
                    if stop.is_set():
                        break
            except psycopg.Error as exc:
                self._listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
                    conn = None
                if refusal(exc) is None and not stop.is_set():
                    self._outage.failed(reason(exc), began)
                stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def _identity(tx: Tx) -> Any:
    return tx.execute(IDENTITY).fetchone()


_ANALYZE_ROWS = 1000
_ANALYZE_EVERY = 30.0


def _rollback(conn: psycopg.Connection[Any]) -> None:
    """Roll back what is left of a failed transaction, if the connection still works."""
    if not conn.closed:
        with contextlib.suppress(psycopg.Error):
            conn.rollback()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class _Connects:
    """How the pool's latest connection attempt went: its error, and whether the server
    refused it for good (a wrong password, an unknown role or database: `refusal`)."""

    def __init__(self) -> None:
        self.error: psycopg.Error | None = None
        self.refused: str | None = None

    def connection_class(self) -> type[psycopg.Connection[Any]]:
        """A connection class for the pool that reports each attempt here."""
        connects = self

        class StoreConnection(psycopg.Connection[Any]):
            @classmethod
            def connect(cls, conninfo: str = "", **kwargs: Any) -> Self:
                try:
                    conn = super().connect(conninfo, **kwargs)
                except psycopg.Error as exc:
                    connects.error, connects.refused = exc, refusal(exc)
                    raise
                connects.error = connects.refused = None
                return conn

        return StoreConnection
