"""Row locks in one global order, so that transactions of the SQL engine never deadlock.

SQLite has one writer at a time and no row locks; on PostgreSQL, every operation that locks
more than one job row follows one rule:

1. Named locks (`Dialect.lock_name`: the advisory lock of an event latch) come first, in name
   order, before any job row.
2. Job rows are locked in ascending id. A transaction waits for a row lock only on a row above
   every job row it already holds; so every wait goes upwards, and a cycle of waiting
   transactions cannot form. A job's id is above its parent's and above its dependencies' ids
   (they existed when it was submitted), so parents come before their children and dependencies
   before their dependents: an operation first locks, in one statement ordered by id, every row
   it knows it will write (the jobs it moves with their parents, the children they wait for),
   before writing any of them. A single-row UPDATE of a parent after its children were locked
   is exactly what this forbids.
3. A row the operation finds only later (the cascade reaches a grandparent, a sibling, a
   dependent) and that lies below the highest row held is taken only if it is free at once
   (`SKIP LOCKED`). If another transaction holds it, the operation starts over (`Reorder`):
   the transaction rolls back, and the next try locks that row up front with the others
   (`Tx.plan`). After `RESTARTS` tries it waits instead (PostgreSQL would then break a cycle).
4. Statements that lock many rows in an order of their own (an UPDATE over a WHERE clause) are
   preceded by `lock` on those rows, or skip locked rows and never wait (claims, housekeeping,
   reclaims); the rows such a statement took are recorded with `note_held`, so that later waits
   of the same transaction still only go upwards.
5. Other tables' rows (dependency edges, checkpoints, attempts) are written only while the job
   row they belong to is held, so they add no waits of their own.

`lock` is how the engine takes job rows; `run_ordered` runs one operation under the rule.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from wireframe.store.sql.tx import Tx

T = TypeVar("T")

RESTARTS = 8
"""Tries an operation makes in strict order before it waits for rows out of order."""


class Reorder(Exception):
    """An operation needs rows, below some it holds, that another transaction holds now."""

    def __init__(self, ids: Iterable[int]) -> None:
        self.ids = frozenset(ids)
        super().__init__(f"start over, locking jobs {sorted(self.ids)} first")


def run_ordered(op: Callable[..., T], tx: Tx, now: float, args: Sequence[Any]) -> T:
    """`op(tx, now, *args)`, started over with more rows locked up front while it reorders."""
    plan: frozenset[int] = frozenset()
    tries = 0
    while True:
        tx.plan, tx.held, tx.top, tx.strict = plan, set(), 0, tries < RESTARTS
        try:
            return op(tx, now, *args)
        except Reorder as exc:
            plan = plan | exc.ids
            tries += 1
            tx.dialect.restart(tx)
            tx.wakes = False
            tx.transitions.clear()


def lock(tx: Tx, ids: Iterable[int | None], *, parents: bool = False) -> None:
    """Lock job rows `ids` (with `parents`, their parents too) until commit, in the order."""
    if not tx.dialect.lock:
        return
    want = {i for i in ids if i is not None}
    if not tx.held:
        want |= tx.plan
        if parents:
            _first(tx, want)
            return
    elif parents:
        want |= _parents(tx, want - tx.held)
    want -= tx.held
    if not want:
        return
    low = sorted(i for i in want if i < tx.top)
    high = sorted(i for i in want if i > tx.top)
    if low:
        _take_free(tx, low, want)
    if high:
        tx.execute(
            "SELECT id FROM jobs WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE", (high,)
        ).fetchall()
    note_held(tx, want)


def note_held(tx: Tx, ids: Iterable[int]) -> None:
    """Record rows this transaction has locked by other means (a statement that skips locked
    rows, and so never waited for them)."""
    for i in ids:
        tx.held.add(i)
        if i > tx.top:
            tx.top = i


def note_top(tx: Tx, job_id: int | None) -> None:
    """Record that this transaction may hold rows up to `job_id` (which ones does not matter:
    one of them asked for again is free to it at once)."""
    if job_id is not None and job_id > tx.top:
        tx.top = job_id


def _first(tx: Tx, want: set[int]) -> None:
    """The transaction's first locks: `want` and their parents, in one statement by id."""
    if not want:
        return
    # One array of ids (a job's parent never changes: read without a lock); an OR of two
    # conditions would let the planner scan the index of every child job instead.
    rows = tx.execute(
        "SELECT id FROM jobs WHERE id = ANY(ARRAY(SELECT unnest(?::bigint[]) "
        "UNION SELECT parent_id FROM jobs WHERE id = ANY(?::bigint[]))) ORDER BY id FOR UPDATE",
        (sorted(want), sorted(want)),
    ).fetchall()
    note_held(tx, want)
    note_held(tx, (row[0] for row in rows))


def _parents(tx: Tx, ids: set[int]) -> set[int]:
    """The parents of jobs `ids` (a job's parent never changes: read without a lock)."""
    if not ids:
        return set()
    rows = tx.execute(
        "SELECT parent_id FROM jobs WHERE id = ANY(?::bigint[])", (sorted(ids),)
    ).fetchall()
    return {row[0] for row in rows if row[0] is not None}


def _take_free(tx: Tx, low: list[int], want: set[int]) -> None:
    """Lock rows below `tx.top` that are free now; start over if another transaction holds one."""
    if not tx.strict:
        tx.execute(
            "SELECT id FROM jobs WHERE id = ANY(?::bigint[]) ORDER BY id FOR UPDATE", (low,)
        ).fetchall()
        return
    busy = tx.execute(
        "WITH got AS MATERIALIZED (SELECT id FROM jobs WHERE id = ANY(?::bigint[]) "
        "FOR UPDATE SKIP LOCKED) "
        "SELECT id FROM jobs WHERE id = ANY(?::bigint[]) AND id NOT IN (SELECT id FROM got)",
        (low, low),
    ).fetchall()
    if busy:
        raise Reorder(tx.held | want)
