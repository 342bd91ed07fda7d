"""The SQLite store (default: WAL, `BEGIN IMMEDIATE` writes off the event loop).

`SqliteMemoryStore` is the same engine on a private in-memory SQLite database, called directly
on the event loop (no disk, no thread hop). `memory://` is the pure-Python `MemoryStore`
(`wireframe.store.memory`); this one stays as its SQL reference (the conformance suite runs
both).
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Concatenate, ParamSpec, TypeVar, cast

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs

from wireframe.store._sqlite_tx import SqliteBound, SqliteLender, check_connection
from wireframe.store.base import Chooser, Observers
from wireframe.store.engine import EngineStore, finish_then_claim
from wireframe.store.errors import ForeignConnectionError, NoStoreError, StoreError
from wireframe.store.records import (
    ClaimRequest,
    JobRecord,
    Outcome,
)
from wireframe.store.sql import claim as claim_sql
from wireframe.store.sql import schema
from wireframe.store.sql.tx import Tx
from wireframe.store.transactional import Bound, Lent

CHECKPOINT_EVERY = 500
"""Write transactions between two WAL checkpoints (run in a worker thread)."""
_BUSY = object()

P = ParamSpec("P")
T = TypeVar("T")

Op = Callable[Concatenate[Tx, float, P], T]


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    """Whether SQLite refused for a lock held elsewhere (SQLITE_BUSY or SQLITE_LOCKED)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


def _has_schema(conn: sqlite3.Connection) -> bool:
    """Whether the database holds a wireframe store (its `schema_version` table)."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    return found is not None


class SqliteStore(EngineStore):
    """Jobs in one SQLite file, shared safely by the processes of one machine."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: str = "NORMAL",
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.01,
        create: bool = True,
    ) -> None:
        self.path = str(path)
        self.create = create
        """False: `open()` raises NoStoreError for a file that is missing or holds no store,
        instead of creating it (and its directories)."""
        self.url = f"sqlite:///{self.path}"
        self.clock = clock
        self._synchronous = synchronous
        self._busy_timeout = busy_timeout
        self._poll_interval = poll_interval
        self._conn: sqlite3.Connection | None = None
        self._txn: Tx | None = None
        self._limiter = anyio.CapacityLimiter(1)
        self._observers = Observers()
        self._seen_version: int | None = None
        self._writes = 0
        """Write transactions since the last WAL checkpoint."""
        self._lender = SqliteLender(
            self._connect, self._observers, lambda: self.clock(), busy_timeout
        )
        self._known_files: set[str] = set()
        """Names of the store's file as application connections report it (`bind`)."""

    # -- plumbing ---------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        existing = not self.create and self.path != ":memory:"
        if existing:
            if not Path(self.path).exists():
                raise self._no_store("no such file")
        elif self.path != ":memory:":
            parent = Path(self.path).parent
            try:
                parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._mkdir_error(parent, exc) from None
        try:
            conn = sqlite3.connect(
                # mode=rw: a file removed since the check above is not created again
                f"{Path(self.path).resolve().as_uri()}?mode=rw" if existing else self.path,
                isolation_level=None,
                check_same_thread=False,
                timeout=self._busy_timeout,
                uri=existing,
            )
        except sqlite3.Error as exc:
            if existing and not Path(self.path).exists():
                raise self._no_store("no such file") from None
            raise self._open_error(exc) from None
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            if existing and not _has_schema(conn):
                raise self._no_store("the file holds no wireframe tables")
            if self.path != ":memory:":
                self._switch_to_wal(conn)
            conn.execute(f"PRAGMA synchronous = {self._synchronous}")
            # Checkpoints run in a worker thread every CHECKPOINT_EVERY writes (see `_tx`), never
            # inside a commit made on the event loop.
            conn.execute("PRAGMA wal_autocheckpoint = 0")
        except NoStoreError:
            conn.close()
            raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError) and _is_lock_error(exc):
                raise
            raise self._open_error(exc) from None
        except BaseException:
            conn.close()
            raise
        return conn

    def _switch_to_wal(self, conn: sqlite3.Connection) -> None:
        """Put the file in WAL mode, retrying while other connections hold it, up to the busy
        timeout.

        The switch reads the header and then upgrades to a write lock; SQLite refuses that
        upgrade at once, without waiting, while another connection writes (another opener
        switching or migrating a new file), so the busy timeout alone does not cover it.
        """
        deadline = time.monotonic() + self._busy_timeout
        pause = 0.001
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                break
            except sqlite3.OperationalError as exc:
                left = deadline - time.monotonic()
                if not _is_lock_error(exc):
                    raise
                if left <= 0:
                    raise self._locked_error("switch the database to WAL") from exc
                time.sleep(min(pause * random.uniform(0.5, 1.5), left))
                pause = min(pause * 2, 0.05)
        if str(mode).lower() != "wal":
            raise StoreError(f"{self.url}: could not switch the database to WAL ({mode})")

    def _no_store(self, why: str) -> NoStoreError:
        return NoStoreError(
            f"no store at {self.url} ({why}); `wireframe migrate` or a worker creates it"
        )

    def _mkdir_error(self, parent: Path, exc: OSError) -> StoreError:
        """The database's directory cannot be created: say which path is in the way, or why."""
        where = f"{self.url}: cannot create the directory {str(parent)!r}"
        for path in (parent, *parent.parents):
            if path.exists() and not path.is_dir():
                return StoreError(f"{where}: {str(path)!r} is a file")
        return StoreError(f"{where}: {exc.strerror or exc}")

    def _open_error(self, exc: sqlite3.Error) -> StoreError:
        """A file SQLite cannot open (a directory, no permission) or that is no database."""
        if Path(self.path).is_dir():
            return StoreError(f"{self.url}: {self.path!r} is a directory, not a database file")
        if getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
            return StoreError(f"{self.url}: {self.path!r} is not a SQLite database")
        return StoreError(f"{self.url}: cannot open the database file: {exc}")

    def _locked_error(self, doing: str) -> StoreError:
        """The error for a lock other connections held for the whole busy timeout."""
        return StoreError(
            f"{self.url}: could not {doing}: the file stayed locked by another connection for "
            f"the whole busy timeout ({self._busy_timeout:g} s)"
        )

    def _open_sync(self) -> None:
        conn = self._connect()
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_lock_error(exc):
                    raise self._locked_error("take the write lock to check the schema") from exc
                raise
            schema.migrate(Tx.sqlite(conn), self.url)
            conn.execute("COMMIT")
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        self._txn = Tx.sqlite(conn)

    async def _run(self, fn: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter)

    def _tx(
        self, op: Callable[..., T], *args: Any, write: bool = True, note_version: bool = False
    ) -> Callable[[bool], T]:
        """The transaction running `op`, as a call taking whether it runs in a worker thread."""

        def call(in_thread: bool) -> T:
            conn, txn = self._conn, self._txn
            if conn is None or txn is None:
                raise StoreError(f"{self.url}: the store is not open (call `await store.open()`)")
            # Every operation shares `txn`: what it notes belongs to this transaction alone. The
            # engine only ever sets `wakes` (`housekeep` returns it), and a COMMIT that raised
            # leaves the transitions of work that never committed.
            txn.wakes = False
            if txn.transitions:
                txn.transitions.clear()
            if note_version:
                self._seen_version = conn.execute("PRAGMA data_version").fetchone()[0]
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                result = op(txn, self.clock(), *args)
            except BaseException:
                conn.execute("ROLLBACK")
                txn.transitions.clear()
                raise
            try:
                conn.execute("COMMIT")
            except BaseException:
                # SQLite may leave the transaction open (a busy or failed COMMIT): end it, or
                # the next operation's BEGIN fails.
                if conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                txn.transitions.clear()
                raise
            if txn.transitions:
                self._observers.collect(txn.transitions)
                txn.transitions.clear()
            if write:
                self._writes += 1
                if in_thread and self._writes >= CHECKPOINT_EVERY:
                    self._writes = 0
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            return result

        return call

    async def _call(self, call: Callable[[bool], T], inline: bool) -> T:
        """Run a transaction: small ones on the event loop when the write lock is free at once,
        everything else (and anything that would wait for a lock) in a worker thread.

        A commit on the loop costs tens of microseconds; a trip to a thread costs more than
        that. A transaction never waits for a lock on the loop: with the busy timeout at zero,
        a held lock makes it roll back and go to the thread, where it waits as usual.
        """
        try:
            if inline and self._may_inline():
                await anyio.lowlevel.checkpoint()  # before the work: a cancel leaves nothing done
                if self._may_inline():
                    result = self._inline(call)
                    if result is not _BUSY:
                        return cast(T, result)
            return await self._run(partial(call, True))
        finally:
            self._observers.deliver()

    def _may_inline(self) -> bool:
        return (
            self.path != ":memory:"
            and self._conn is not None
            and self._limiter.borrowed_tokens == 0
            and self._writes < CHECKPOINT_EVERY
        )

    def _inline(self, call: Callable[[bool], T]) -> T | object:
        conn = self._conn
        assert conn is not None
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            return call(False)
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return _BUSY  # rolled back: the thread will run it again and wait its turn
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")

    async def _op(
        self,
        op: Callable[..., T],
        *args: Any,
        write: bool = True,
        inline: bool = False,
        retry_commit: bool = True,
    ) -> T:
        """One transaction; `inline` ones may run on the event loop (see `_call`)."""
        return await self._call(self._tx(op, *args, write=write), inline)

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, switch to WAL and migrate the schema, waiting up to the busy timeout for
        each lock other connections hold (a StoreError once it runs out)."""
        if self._conn is None:
            await self._run(self._open_sync)

    async def close(self) -> None:
        """Close the connections."""
        conn = self._conn
        self._conn = None
        self._txn = None
        self._lender.close()
        if conn is not None:
            await self._run(conn.close)

    async def __aenter__(self) -> SqliteStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the application's transactions ---------------------------------------------------

    async def bind(self, connection: Any) -> Bound:
        """Store operations on the application's `sqlite3` connection to the store's file,
        inside its open transaction (`wireframe.store.transactional`); they run on the calling
        thread. ForeignConnectionError for another file or a connection not in a transaction."""
        if not isinstance(connection, sqlite3.Connection):
            raise ForeignConnectionError(
                f"{self.url}: expected a sqlite3.Connection to {self.path!r}, "
                f"got {type(connection).__name__}"
            )
        check_connection(connection, self.path, self.url, self._known_files)
        return SqliteBound(connection, self._observers, self.clock)

    async def lend(self) -> Lent:
        """A connection to the store's file inside BEGIN IMMEDIATE, for one transaction of the
        application's writes and the store's (`wireframe.store.transactional.Lent`)."""
        if self.path == ":memory:":
            raise ForeignConnectionError(
                f"{self.url}: an in-memory SQLite store lends no connections; use a file"
            )
        if self._conn is None:
            raise StoreError(f"{self.url}: the store is not open (call `await store.open()`)")
        return await self._lender.lend()

    # -- jobs -------------------------------------------------------------------------------

    async def claim(self, request: ClaimRequest, chooser: Chooser | None = None) -> list[JobRecord]:
        """Lease pending jobs, noting the data version first (see `wait_for_work`)."""
        return await self._call(
            self._tx(claim_sql.claim, request, chooser, note_version=True), inline=True
        )

    async def finish_and_claim(
        self, outcomes: Sequence[Outcome], request: ClaimRequest, chooser: Chooser | None = None
    ) -> tuple[list[bool], list[JobRecord]]:
        """Apply fenced outcomes and lease pending jobs in one transaction, noting the data
        version first like `claim`."""
        request = attrs.evolve(request, housekeep=False)
        return await self._call(
            self._tx(finish_then_claim, list(outcomes), request, chooser, None, note_version=True),
            inline=True,
        )

    # -- wake-ups ---------------------------------------------------------------------------

    def _data_version(self) -> int | None:
        """PRAGMA data_version of the store's connection: it moves on other connections' commits
        only, so this store's own writes never look like new work."""
        conn = self._conn
        return None if conn is None else int(conn.execute("PRAGMA data_version").fetchone()[0])

    async def _version(self) -> int | None:
        """`_data_version` on the loop when the connection is free, else in a worker thread."""
        await anyio.lowlevel.checkpoint()
        if self._limiter.borrowed_tokens == 0:
            return self._data_version()
        return await self._run(self._data_version)

    async def wait_for_work(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return once another connection committed (PRAGMA data_version moved), or on timeout.

        Compared with the version noted when the last claim began, so a commit that lands
        between that claim and this wait is not missed.
        """
        if self.path == ":memory:":  # private to this store: nobody else can add work
            await anyio.sleep(timeout)
            return
        start = self._seen_version
        self._seen_version = None
        if start is None:
            start = await self._version()
        deadline = anyio.current_time() + timeout
        while True:
            if await self._version() != start:
                return
            left = deadline - anyio.current_time()
            if left <= 0:
                return
            await anyio.sleep(min(self._poll_interval, left))


class SqliteMemoryStore(SqliteStore):
    """Jobs in a private in-memory SQLite database, operated on the event loop."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(":memory:", clock=clock)
        self.url = "sqlite:///:memory:"

    async def _run(self, fn: Callable[[], T]) -> T:
        await anyio.lowlevel.checkpoint()
        return fn()
