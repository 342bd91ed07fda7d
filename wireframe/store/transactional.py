"""Store operations inside a transaction the caller commits: on the application's connection
(`Bound`), or on a connection the store lends for one transaction (`Lent`).

A `Bound` runs the engine's operations (submit, a fenced finish, a fenced checkpoint) on a
connection whose transaction belongs to someone else: nothing is committed here, and what the
operations did exists exactly when that transaction commits. Each operation runs inside a
savepoint, so one that fails leaves the caller's transaction as it was. The moves it made
(`Transition`) are told to the store's observers only once the caller says the transaction
committed (`committed`); a rolled-back transaction made none (`rolled_back`).

Where each kind of connection runs its statements (SQLite on the calling thread, psycopg in a
worker thread) is the binding's business (`wireframe.store._sqlite_tx`, `_pg_tx`).
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

from wireframe.store.base import Observers
from wireframe.store.records import Lease, LeaseStatus, NewJob, Outcome, SubmitResult, Transition
from wireframe.store.sql import durable, finish
from wireframe.store.sql.flows import submit as submit_sql
from wireframe.store.sql.tx import Tx

T = TypeVar("T")

Op = Callable[..., T]
"""An engine operation: `op(tx, now, *args)`."""


class Bound(abc.ABC):
    """Engine operations on a connection whose transaction the caller commits or rolls back."""

    def __init__(self, observers: Observers, clock: Callable[[], float]) -> None:
        self._observers = observers
        self._clock = clock
        self.transitions: list[Transition] = []
        """Moves the operations made, told to the store's observers on `committed`."""
        self.wakes = False
        """Whether work may become claimable when the transaction commits."""

    @abc.abstractmethod
    async def run(self, op: Op[T], *args: Any) -> T:
        """`op(tx, now, *args)` in the caller's transaction, inside a savepoint."""

    def _ran(self, tx: Tx) -> None:
        """Keep what one operation noted on its Tx."""
        self.transitions.extend(tx.transitions)
        tx.transitions.clear()
        self.wakes = self.wakes or tx.wakes

    async def submit(self, jobs: Sequence[NewJob]) -> list[SubmitResult]:
        """Insert jobs (`Store.submit`), visible once the caller's transaction commits."""
        if not jobs:
            return []
        return await self.run(submit_sql, list(jobs))

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply outcomes fenced on their leases (`Store.finish`); True where applied."""
        if not outcomes:
            return []
        return await self.run(finish.finish, list(outcomes))

    async def put_checkpoint(
        self, lease: Lease, seq: int, name: str, kind: str, value: str | None, lease_ttl: float
    ) -> LeaseStatus:
        """Record a checkpoint fenced on the lease (`Store.put_checkpoint`)."""
        return await self.run(durable.put_checkpoint, lease, seq, name, kind, value, lease_ttl)

    def committed(self) -> None:
        """The caller's transaction committed: tell the store's observers what it moved."""
        transitions, self.transitions = self.transitions, []
        self._observers.collect(transitions)
        self._observers.deliver()

    def rolled_back(self) -> None:
        """The caller's transaction rolled back: forget what the operations noted."""
        self.transitions = []
        self.wakes = False


@runtime_checkable
class Transactional(Protocol):
    """A store whose jobs live in a database the application can write to as well."""

    async def bind(self, connection: Any) -> Bound:
        """Store operations on the application's connection, inside its open transaction."""
        ...

    async def lend(self) -> Lent:
        """A connection in a new transaction, for the application's writes and the store's."""
        ...


class Lent(abc.ABC):
    """One transaction on a connection the store lends (`ctx.transaction()`): the caller
    writes through `connection`, the store writes through `bound`, then one of `commit` or
    `rollback` ends it and gives the connection back."""

    connection: Any
    """What the application writes through: a `sqlite3.Connection` or a psycopg
    `AsyncConnection`, in a transaction."""
    bound: Bound

    @abc.abstractmethod
    async def commit(self) -> None:
        """Commit (waking workers if the store's writes call for it), then give the
        connection back. The caller then tells the store's observers (`bound.committed()`),
        when it is ready to publish what follows from them."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Roll back and give the connection back (safe to call after `commit` failed)."""
