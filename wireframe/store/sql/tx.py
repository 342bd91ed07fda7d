"""One transaction of the transition engine, on SQLite or PostgreSQL.

The engine (`wireframe.store.sql.*`) is written once, as sync functions taking a `Tx`. A `Tx`
offers `execute` / `executemany` with `?` placeholders, returning DB-API cursors, and a `Dialect`
for the few things the two databases spell differently: scalar `max`/`min`, row locks (`FOR
UPDATE [SKIP LOCKED]`), the tag-subset test, id reservation and named locks. The caller opens and
commits the transaction; the engine never does.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from wireframe.store.records import Transition


class Cursor(Protocol):
    """The part of a DB-API cursor the engine uses."""

    @property
    def rowcount(self) -> int:
        """Rows changed by the last statement."""

    def fetchone(self) -> Any:
        """The next row, or None."""

    def fetchall(self) -> list[Any]:
        """Every remaining row."""

    def __iter__(self) -> Iterator[Any]: ...


class Execute(Protocol):
    """`execute(sql, params)` with `?` placeholders."""

    def __call__(self, sql: str, params: Sequence[Any] = (), /) -> Cursor:
        """Run one statement."""


class ExecuteMany(Protocol):
    """`executemany(sql, rows)` with `?` placeholders."""

    def __call__(self, sql: str, rows: Sequence[Sequence[Any]], /) -> Any:
        """Run one statement per row of parameters."""


class Bulk:
    """One write applied to many rows, spelled twice: once per row, and once for whole columns.

    SQLite runs `each` through `executemany` (in-process, so a statement per row is cheap).
    PostgreSQL runs `columns` once: either a statement with one array parameter per column
    (`unnest(?::type[], ...)`), or a `COPY ... FROM STDIN` fed the rows, so a batch costs one
    round trip and one statement instead of one per row.
    """

    __slots__ = ("columns", "each")

    def __init__(self, each: str, columns: str) -> None:
        self.each = each
        self.columns = columns


def unnest(*types: str) -> str:
    """`unnest(?::t1[], ?::t2[], ...)`: a table of the given column types, one array each."""
    return "unnest(" + ", ".join(f"?::{t}[]" for t in types) + ")"


class Dialect:
    """SQLite spelling of the non-portable bits (the base class); PostgreSQL overrides it."""

    name = "sqlite"
    lock = ""
    """Suffix of a SELECT that must lock its rows until commit (SQLite: the write lock does)."""
    skip_locked = ""
    """Suffix of a claim SELECT that skips rows other transactions hold."""
    materialize_pick = False
    """Pick claim candidates in a MATERIALIZED CTE before leasing them."""

    def greatest(self, a: str, b: str) -> str:
        """The larger of two SQL expressions."""
        return f"max({a}, {b})"

    def least(self, a: str, b: str) -> str:
        """The smaller of two SQL expressions."""
        return f"min({a}, {b})"

    def lock_of(self, alias: str) -> str:
        """Suffix locking the rows of one table of a join."""
        return ""

    def tags_subset(self) -> str:
        """A condition (one parameter: a JSON list) true when the job's tags are all in it."""
        return (
            "(tags IS NULL OR NOT EXISTS (SELECT 1 FROM json_each(jobs.tags) t "
            "WHERE t.value NOT IN (SELECT value FROM json_each(?))))"
        )

    def tags_param(self, tags: Sequence[str]) -> object:
        """The parameter of `tags_subset`."""
        return json.dumps(list(tags))

    def reserve_ids(self, tx: Tx, table: str, count: int) -> list[int]:
        """Reserve `count` new ids of `table`, ascending; ids are never reused."""
        row = tx.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
        first = (int(row[0]) if row else 0) + 1
        if row:
            tx.execute(
                "UPDATE sqlite_sequence SET seq = ? WHERE name = ?", (first + count - 1, table)
            )
        else:
            tx.execute(
                "INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)", (table, first + count - 1)
            )
        return list(range(first, first + count))

    def lock_name(self, tx: Tx, name: str) -> None:
        """Serialise transactions on `name` until commit (SQLite: the write lock already does)."""

    def restart(self, tx: Tx) -> None:
        """Roll the transaction back and begin it again, for an operation that starts over to
        take its row locks in order (`wireframe.store.sql.locks`; SQLite takes none)."""
        raise NotImplementedError(f"{self.name} takes no row locks, so nothing starts over")


SQLITE = Dialect()


class Tx:
    """An open transaction: `execute`, `executemany`, the dialect, and whether to wake workers."""

    __slots__ = (
        "_bulk",
        "dialect",
        "execute",
        "executemany",
        "held",
        "plan",
        "strict",
        "top",
        "transitions",
        "wakes",
    )

    def __init__(
        self,
        execute: Execute,
        executemany: ExecuteMany,
        dialect: Dialect,
        bulk: Callable[[Bulk, Sequence[Sequence[Any]]], None] | None = None,
    ) -> None:
        self.execute = execute
        self.executemany = executemany
        self.dialect = dialect
        self._bulk = bulk
        self.wakes = False
        """Set by the engine when work may have become claimable (a NOTIFY on PostgreSQL)."""
        self.transitions: list[Transition] = []
        """Moves made along the way (blocked, unblocked, expired), reported after commit."""
        self.held: set[int] = set()
        """Job rows this transaction has locked (`wireframe.store.sql.locks`)."""
        self.top = 0
        """The highest of them: a lock wait is only ever for a row above it."""
        self.plan: frozenset[int] = frozenset()
        """Rows to lock with the first ones, learnt by an earlier try of the operation."""
        self.strict = True
        """Whether a row below `top` that another transaction holds makes the operation start
        over (else it is waited for, as a last resort after many restarts)."""

    def bulk(self, statement: Bulk, rows: Sequence[Sequence[Any]]) -> None:
        """Apply `statement` to every row, the way this database does it fastest."""
        if not rows:
            return
        if self._bulk is None:
            self.executemany(statement.each, rows)
        else:
            self._bulk(statement, rows)

    @classmethod
    def sqlite(cls, conn: sqlite3.Connection) -> Tx:
        """A Tx over a SQLite connection: its bound methods, no wrapping on the hot path."""
        return cls(conn.execute, conn.executemany, SQLITE)
