"""The scheduler's side of transactions: submitting on the application's connection, and
`ctx.transaction()`, whose block commits with the job's completion (or a durable step's record).

A handler's transaction without `step` is not committed when its block ends: it is parked on
the attempt, and the runner commits it together with the job's completion once the handler
returns (`_parked.complete_in_transaction`), or rolls it back if the handler raises, suspends, is
cancelled or loses its lease. The completion is fenced on the lease inside that transaction, so
a stale attempt's transaction fails on the fence and rolls back with the handler's writes. A
job completed so is never queued for the completer; its events are published from what the
store wrote, once, like any other (`Completer.committed`).
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Any, Protocol

import anyio

from wireframe.durable import DurableRun
from wireframe.durable.transaction import TransactionStep
from wireframe.scheduler._store_errors import store_errors
from wireframe.scheduler.errors import ConfigError, ForeignConnection
from wireframe.store import Complete, JobRecord, NewJob, Store, SubmitResult
from wireframe.store.transactional import Lent, Transactional


def transactional(store: Store, where: str) -> Transactional:
    """The store, if it can share the application's transactions; ForeignConnection if not."""
    if not isinstance(store, Transactional):
        raise ForeignConnection(
            f"{where}: the store {store.url} keeps its jobs outside any database, so it cannot "
            f"share a transaction; use a SQLite file or PostgreSQL store"
        )
    return store


async def driver_connection(connection: object) -> object:
    """The DB-API connection under a SQLAlchemy `Connection` or `AsyncConnection` (as given
    otherwise)."""
    get_raw = getattr(connection, "get_raw_connection", None)
    if get_raw is not None and inspect.iscoroutinefunction(get_raw):
        connection = await get_raw()  # sqlalchemy.ext.asyncio.AsyncConnection
    else:
        pooled = getattr(connection, "connection", None)  # sqlalchemy Connection
        if pooled is not None and hasattr(pooled, "driver_connection"):
            connection = pooled
    driver = getattr(connection, "driver_connection", None)
    return driver if driver is not None else connection


async def submit_on(
    store: Store,
    connection: object,
    jobs: Sequence[NewJob],
    open: Callable[[], Awaitable[None]] | None = None,
) -> list[SubmitResult]:
    """Insert `jobs` through the application's connection, in its open transaction: they exist
    exactly when that transaction commits (workers are woken then: NOTIFY on PostgreSQL, the
    data version of the file on SQLite). `open`: the scheduler is not open yet, and this opens
    it (refused while a SQLite transaction holds the lock that opening needs)."""
    target = transactional(store, "submit(connection=...)")
    driver = await driver_connection(connection)
    if open is not None:
        if isinstance(driver, sqlite3.Connection) and driver.in_transaction:
            raise ForeignConnection(
                f"submit(connection=...): {store.url}: open the scheduler before the "
                f"transaction begins (`await scheduler.open()`, or run it as a task): opening "
                f"writes to the SQLite file, and would wait for the lock your transaction holds"
            )
        await open()
    with store_errors():
        bound = await target.bind(driver)
        return await bound.submit(jobs)


class Committed:
    """An outcome the runner has already committed in the handler's transaction: the completer
    only publishes it (`deliver` tells the store's observers of what the commit moved)."""

    __slots__ = ("deliver", "outcome")

    def __init__(self, outcome: Complete, lent: Lent) -> None:
        self.outcome = outcome
        self.deliver = lent.bound.committed


class TxAttempt(Protocol):
    """What a handler's transaction needs of its attempt."""

    @property
    def record(self) -> JobRecord:
        """The job's record as claimed."""
        ...

    txn: Lent | None
    """A transaction waiting to commit with the job's completion."""


class HandlerTransaction:
    """`async with ctx.transaction() as conn:` (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        attempt: TxAttempt,
        durable: DurableRun | None,
        step: str | None,
    ) -> None:
        self._store = store
        self._attempt = attempt
        self._durable = durable
        self._step_name = step
        self._step: TransactionStep | None = None
        self._lent: Lent | None = None
        job = attempt.record
        self._where = f"job {job.id} ({job.type}): ctx.transaction()"

    async def __aenter__(self) -> Any:
        store = transactional(self._store, self._where)
        if self._attempt.txn is not None:
            raise ConfigError(
                f"{self._where}: this run already has a transaction waiting to commit with the "
                f"job's completion; a handler opens one such transaction per run (give each "
                f"further one a step name: ctx.transaction(step=...))"
            )
        if self._durable is not None and self._step_name is not None:
            self._step = await self._durable.transaction_step(self._step_name)
        with store_errors():
            self._lent = await store.lend()
        return self._lent.connection

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        lent = self._lent
        assert lent is not None
        step = self._step
        if exc_type is not None or (step is not None and step.done):
            with anyio.CancelScope(shield=True):
                await lent.rollback()
            # A step committed by an earlier run: what its block does again is rolled back, and
            # so is an error it raises now (its writes are in the database once already).
            return (
                step is not None
                and step.done
                and exc_type is not None
                and issubclass(exc_type, Exception)
            )
        if step is None:
            self._attempt.txn = lent  # committed with the completion, once the handler returns
            return False
        with anyio.CancelScope(shield=True):
            try:
                await step.record(lent.bound)
                with store_errors():
                    await lent.commit()
            except BaseException:
                await lent.rollback()
                raise
        step.committed()
        lent.bound.committed()
        return False
