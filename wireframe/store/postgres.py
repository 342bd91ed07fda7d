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
"""

from __future__ import annotations

import contextlib
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import attrs

from wireframe.store.base import Chooser, Observers
from wireframe.store.engine import EngineStore, finish_then_claim, without_now
from wireframe.store.errors import StoreError, StoreURLError
from wireframe.store.pg_sql import analyze, leased_by, pg_tx, xact_status
from wireframe.store.records import (
    ClaimRequest,
    JobRecord,
    NewJob,
    Outcome,
    SubmitResult,
)
from wireframe.store.sql import claim as claim_sql
from wireframe.store.sql import finish as finish_sql
from wireframe.store.sql import schema
from wireframe.store.sql import submit as submit_sql
from wireframe.store.sql.locks import run_ordered
from wireframe.store.sql.tx import Tx

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

Settle = Callable[[T, int, "str | None"], "T | _Rerun"]
"""Given what a transaction returned before its COMMIT was lost, its server process id and its
transaction id (if the settle asked for it, `needs_xid`, and the transaction wrote anything):
the result to report if it committed, or _RERUN if it did not (see `PostgresStore._call`)."""

DEFAULT_SCHEMA = "wireframe"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_NOW = "SELECT extract(epoch FROM clock_timestamp())::float8"
_SKEW_EVERY = 10.0


def redact(url: str) -> str:
    """The URL with its password replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def parse_url(url: str, schema_name: str | None) -> tuple[str, str]:
    """Split a store URL into (libpq conninfo URL without `schema=`, schema name)."""
    safe = redact(url)
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise StoreURLError(f"store URL {safe!r}: not a valid PostgreSQL URL ({exc})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreURLError(f"store URL {safe!r}: expected postgresql://user@host:port/dbname")
    query_items = parse_qsl(parts.query, keep_blank_values=True)
    from_url = [v for k, v in query_items if k == "schema"]
    kept = [(k, v) for k, v in query_items if k != "schema"]
    name = schema_name if schema_name is not None else (from_url[-1] if from_url else None)
    name = DEFAULT_SCHEMA if name is None else name
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise StoreURLError(
            f"store URL {safe!r}: schema name {name!r} must be lowercase letters, digits and "
            f"underscores, starting with a letter or underscore (at most 63 characters)"
        )
    conninfo = urlunsplit(parts._replace(query=urlencode(kept)))
    return conninfo, name


_RETRY_TX = ("40001", "40P01", "23505")
"""Serialization failure, deadlock, unique violation (a concurrent submit of the same key)."""


class PostgresStore(EngineStore):
    """Jobs in a PostgreSQL schema, shared by worker processes on many machines."""

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        clock: Callable[[], float] | None = None,
        pool_size: int = 4,
        connect_timeout: float = 10.0,
        reconnect_timeout: float = 120.0,
    ) -> None:
        if psycopg is None or psycopg_pool is None:  # pragma: no cover
            raise StoreError(
                f"{redact(url)}: the PostgreSQL store needs psycopg; "
                f"install it with `pip install 'wireframe[postgres]'`"
            )
        self._conninfo, self.schema = parse_url(url, schema)
        self.url = redact(url)
        self.clock = clock
        if pool_size < 1:
            raise ValueError(f"PostgresStore pool_size must be >= 1, got {pool_size!r}")
        self._pool_size = pool_size
        self._connect_timeout = connect_timeout
        self._reconnect_timeout = reconnect_timeout
        self.channel = f"wireframe_{self.schema}"[:63]
        self._pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] | None = None
        self._limiter = anyio.CapacityLimiter(pool_size)
        self._lock = threading.Lock()
        self._waiters: dict[int, tuple[anyio.lowlevel.EventLoopToken, anyio.Event]] = {}
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

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, schema={self.schema!r})"

    # -- plumbing ---------------------------------------------------------------------------

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(f"SET search_path TO {self.schema}")
        conn.commit()

    def _open_sync(self) -> None:
        pool: psycopg_pool.ConnectionPool[psycopg.Connection[Any]] = psycopg_pool.ConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=self._pool_size,
            open=False,
            kwargs={
                "autocommit": False,
                "connect_timeout": max(1, int(self._connect_timeout)),
                # A queue table's statistics go stale within seconds (rows stream through
                # `pending`); with stale ones the planner picks bitmap scans that sort every
                # pending row, where the partial indexes' ordered scans read only what they need.
                "options": "-c enable_bitmapscan=off",
            },
            configure=self._configure,
            timeout=self._connect_timeout,
            reconnect_timeout=self._reconnect_timeout,
            name=f"wireframe-{self.schema}",
        )
        try:
            pool.open(wait=True, timeout=self._connect_timeout)
        except psycopg_pool.PoolTimeout:
            reason = _connect_reason(self._conninfo, self._connect_timeout)
            pool.close()
            raise StoreError(f"{self.url}: cannot connect to PostgreSQL: {reason}") from None
        try:
            with pool.connection() as conn:
                # Many processes may start at once: one migrates, the others wait and find it done.
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"wireframe.migrate.{self.schema}",),
                )
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                conn.execute(f"SET LOCAL search_path TO {self.schema}")
                schema.migrate(pg_tx(conn), self.url, schema.PG_MIGRATIONS)
                conn.commit()
        except BaseException:
            pool.close()
            raise
        self._pool = pool

    def _call(
        self,
        op: Callable[..., T],
        args: tuple[Any, ...],
        retry_commit: bool,
        settle: Settle[T] | None = None,
    ) -> T:
        """Run `op(tx, now, *args)` in one transaction; reconnect and retry transient failures.

        Every operation, a one-statement claim included, runs inside BEGIN ... COMMIT: a
        connection lost before COMMIT leaves nothing behind, so retrying is safe. A connection
        lost *during* COMMIT leaves the outcome unknown: the server may have committed. Then
        `settle`, if given, finds out (`settle(result, backend_pid, xid)`, with what the
        transaction returned before COMMIT, the pid of its server process and, if the settle
        has a true `needs_xid` attribute, the transaction's id, read just before COMMIT with
        the NOTIFY unless a statement already returned it (`Tx.xid`), or None if it wrote
        nothing): it returns the result to
        report if the transaction committed, or _RERUN if it did not, and the operation runs
        again. Without `settle`, the operation runs again if `retry_commit` (it must be
        harmless to apply twice), else the caller gets a StoreError saying the outcome is
        unknown.
        """
        deadline = time.monotonic() + self._reconnect_timeout
        delay = 0.01
        conflicts = 0
        while True:
            pool = self._pool
            if pool is None:
                raise StoreError(f"{self.url}: the store is not open (call `await store.open()`)")
            committing = False
            tx: Tx | None = None
            result: T | None = None
            pid = 0
            xid: str | None = None
            try:
                with pool.connection() as conn:
                    tx = pg_tx(conn)
                    try:
                        if self.clock is not None:
                            now = self.clock()
                        elif getattr(op, "needs_now", True):
                            now = self._now(conn)
                        else:
                            now = 0.0
                        result = run_ordered(op, tx, now, args)
                        if getattr(settle, "needs_xid", False):
                            xid = tx.xid
                            if xid is None or tx.wakes:
                                xid = self._xid(conn, tx.wakes)
                        elif tx.wakes:
                            conn.execute(f"NOTIFY {self.channel}")
                    except BaseException:
                        if not conn.closed:
                            conn.rollback()
                        raise
                    committing = True
                    pid = conn.info.backend_pid
                    conn.commit()
                    self._observers.collect(tx.transitions)
                    return result
            except (
                psycopg.OperationalError,
                psycopg.InterfaceError,
                psycopg_pool.PoolTimeout,
            ) as exc:
                sqlstate = getattr(exc, "sqlstate", None)
                if sqlstate in _RETRY_TX and conflicts < 20:
                    conflicts += 1
                    time.sleep(random.uniform(0, 0.002 * conflicts))
                    continue
                if committing and settle is not None:
                    settled = settle(cast(T, result), pid, xid)
                    if not isinstance(settled, _Rerun):
                        assert tx is not None
                        self._observers.collect(tx.transitions)
                        return settled
                    # It did not commit: run it again, like an operation cut short earlier.
                elif committing and not retry_commit:
                    raise StoreError(
                        f"{self.url}: the connection was lost while committing; the change may or "
                        f"may not have been applied ({_one_line(exc)})"
                    ) from exc
                if time.monotonic() + delay > deadline:
                    raise StoreError(
                        f"{self.url}: PostgreSQL unreachable for {self._reconnect_timeout:g} s: "
                        f"{_one_line(exc)}"
                    ) from exc
                log.warning("%s: %s; retrying in %.2f s", self.url, _one_line(exc), delay)
                time.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)
            except psycopg.errors.Error as exc:
                if exc.sqlstate in _RETRY_TX and conflicts < 20:
                    conflicts += 1
                    time.sleep(random.uniform(0, 0.002 * conflicts))
                    continue
                raise StoreError(f"{self.url}: {_one_line(exc)}") from exc

    def _xid(self, conn: psycopg.Connection[Any], notify: bool) -> str | None:
        """The id of the connection's transaction, or None if it wrote nothing; NOTIFY too.

        Read in the statement that would send the NOTIFY anyway, so a transaction that wakes
        workers pays no extra round trip for it.
        """
        if notify:
            row = conn.execute(
                "SELECT pg_current_xact_id_if_assigned()::text, pg_notify(%s, '')",
                (self.channel,),
            ).fetchone()
        else:
            row = conn.execute("SELECT pg_current_xact_id_if_assigned()::text").fetchone()
        return None if row is None or row[0] is None else str(row[0])

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
        spawning a durable child) is settled by its transaction's status if its COMMIT loses
        the connection, like submit and finish.
        """
        settle: Settle[T] | None = None
        if not retry_commit:
            settle = cast(Settle[T], self._settle_xact(object))
        return await self._run(op, *args, retry_commit=retry_commit, settle=settle)

    async def _run(
        self,
        op: Callable[..., T],
        *args: Any,
        retry_commit: bool = True,
        settle: Settle[T] | None = None,
    ) -> T:
        try:
            return await anyio.to_thread.run_sync(
                self._call, op, args, retry_commit, settle, limiter=self._limiter
            )
        finally:
            self._observers.deliver()

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect, create the schema if needed and migrate it under an advisory lock."""
        if self._pool is None:
            self._stop = threading.Event()
            await anyio.to_thread.run_sync(self._open_sync)

    async def close(self) -> None:
        """Close the pool and stop listening; the store may be opened again."""
        pool, self._pool = self._pool, None
        self._stop.set()
        self._listener = None
        if pool is not None:
            await anyio.to_thread.run_sync(pool.close)

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- jobs -------------------------------------------------------------------------------

    async def submit(self, jobs: Sequence[NewJob]) -> list[SubmitResult]:
        """Insert jobs in one transaction; refresh the statistics after bulk inserts.

        A submit whose COMMIT loses its connection is settled by its transaction id
        (`_settle_xact`): if it committed, the results it computed before COMMIT are returned
        (ids, duplicates found, schedules created: exactly what the database now holds, the
        batch being one transaction, all or nothing); if it did not, it runs again, from the
        start (dedup keys looked up again, new ids reserved). A caller never gets an error
        that leaves it guessing whether resubmitting would duplicate the jobs.
        """
        if not jobs:
            return []
        results = await self._run(
            submit_sql.submit, list(jobs), settle=self._settle_xact(list[SubmitResult])
        )
        self._inserted += len(jobs)
        if self._inserted >= _ANALYZE_ROWS and time.monotonic() >= self._next_analyze:
            self._inserted = 0
            self._next_analyze = time.monotonic() + _ANALYZE_EVERY
            await self._run(without_now(analyze))
        return results

    async def claim(self, request: ClaimRequest, chooser: Chooser | None = None) -> list[JobRecord]:
        """Lease pending jobs with FOR UPDATE SKIP LOCKED; a claim is never lost with its COMMIT.

        Each claim writes a token of its own on the rows it leases. When the connection drops
        while COMMIT is in flight, `_settle_claim` reconnects and looks for the token: the
        jobs that carry it are returned as if the COMMIT had been acknowledged (the leases are
        this worker's, and running them costs nothing more); if none does, the claim did not
        commit and runs again. Releasing found jobs back to pending instead would have to undo
        the attempt counter and the attempt rows it opened or reopened, a second write whose
        own COMMIT could be lost the same way; returning them only reads.
        """
        self._claim_generation = self._generation
        if request.housekeep:
            await self.housekeep()
        request = attrs.evolve(request, housekeep=False)
        token = uuid.uuid4().hex
        return await self._run(
            claim_sql.claim, request, chooser, token, settle=self._settle_claim(token)
        )

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply fenced outcomes; one whose COMMIT loses its connection reports what it did.

        The outcomes are fenced on their leases, so running them again after a lost COMMIT
        never applies one twice; but if the lost transaction did commit, the second run finds
        the leases gone and reports False, and the worker would take outcomes it wrote for
        rejected ones (no completed or failed event). Instead `_settle_xact` asks the server
        about the transaction itself: the rule is that an outcome counts as applied exactly
        when the transaction that applied it committed. Committed: the list it computed
        before COMMIT is returned (True for each outcome it applied, False for each lease it
        found gone, both now the database's state). Not committed (rolled back, or its server
        process ended because it still held the rows): nothing was written, and finish runs
        again. Looking at the rows instead (is the job still running under this claim? is
        its attempt closed with this outcome?) would be ambiguous: a released attempt keeps
        its number, so a later claim of the same job can reopen and close the same attempt
        row with the same outcome; the transaction's own status is not.
        """
        if not outcomes:
            return []
        return await self._run(
            finish_sql.finish, list(outcomes), settle=self._settle_xact(list[bool])
        )

    async def finish_and_claim(
        self, outcomes: Sequence[Outcome], request: ClaimRequest, chooser: Chooser | None = None
    ) -> tuple[list[bool], list[JobRecord]]:
        """Apply fenced outcomes and lease pending jobs in one transaction.

        Settled like a finish if its COMMIT loses the connection (`_settle_xact`): committed,
        the outcomes it applied and the jobs it leased are returned; rolled back, it runs
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
            settle=self._settle_xact(tuple[list[bool], list[JobRecord]]),
        )

    def _settle_xact(self, kind: type[T]) -> Settle[T]:
        """Settle a write whose COMMIT went unanswered by the status of its transaction.

        The transaction's id is read before COMMIT (`_call`, `needs_xid`). After a lost
        COMMIT, `xact_status` ends its server process if that process is still in the
        transaction (a partition: it would otherwise hold its rows, and the question open,
        until TCP keepalives give up), waits for the transaction to end, and reads its fate
        from the commit log (`pg_xact_status`), which is unambiguous: committed means every
        row it wrote is in the database, so the result it computed is returned; aborted
        means none is, and the operation runs again (None). A transaction that wrote nothing
        has no id, and whether it committed makes no difference. `kind` only types the result.
        """

        def settle(result: T, pid: int, xid: str | None) -> T | _Rerun:
            if xid is None:
                return result
            status = self._call(without_now(xact_status), (xid, pid), True)
            if status == "committed":
                return result
            if status == "aborted":
                return _RERUN
            raise StoreError(
                f"{self.url}: the connection was lost while committing and the outcome of "
                f"transaction {xid} is unknown ({status or 'too old to tell'}); the change may "
                f"or may not have been applied"
            )

        settle.needs_xid = True  # type: ignore[attr-defined]
        return settle

    def _settle_claim(self, token: str) -> Settle[list[JobRecord]]:
        """Whether a claim whose COMMIT went unanswered committed: its jobs if so, else None."""

        def settle(claimed: list[JobRecord], pid: int, xid: str | None) -> list[JobRecord] | _Rerun:
            if not claimed:
                return claimed  # it leased nothing: committed or not, the outcome is the same
            ids = [job.id for job in claimed]
            found = self._call(without_now(leased_by), (ids, token, pid), True)
            held = {job.id: job for job in found}
            if not held:
                return _RERUN
            return [held[job_id] for job_id in ids if job_id in held]

        return settle

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
            thread = threading.Thread(
                target=self._listen,
                args=(self._stop,),
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
        """The listening connection: wake waiters on NOTIFY; reconnect with backoff."""
        delay = 0.05
        conn: psycopg.Connection[Any] | None = None
        while not stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(
                        self._conninfo,
                        autocommit=True,
                        connect_timeout=max(1, int(self._connect_timeout)),
                    )
                    conn.execute(f"LISTEN {self.channel}")
                    self._listening.set()
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
                    log.warning("%s: listening connection lost: %s", self.url, _one_line(exc))
                stop.wait(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, 2.0)
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


_ANALYZE_ROWS = 1000
_ANALYZE_EVERY = 30.0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _connect_reason(conninfo: str, timeout: float) -> str:
    """Why a connection fails, in one line (the pool only reports a timeout)."""
    try:
        psycopg.connect(conninfo, connect_timeout=max(1, int(timeout))).close()
    except psycopg.Error as exc:
        return _one_line(exc)
    return f"no connection within {timeout:g} s"
