"""Keyset pages of jobs with filters and search, and the live view's sample (`Store.find_jobs`,
`Store.activity`), read through indexes so that they stay fast on millions of rows."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from wireframe.store.records import ACTIVE_STATES, Activity, JobPage, JobQuery, JobRecord, JobState
from wireframe.store.sql.rows import JOB_COLUMNS, TERMINAL_SQL, job_from_row, placeholders
from wireframe.store.sql.schema import BROWSE_INDEXES
from wireframe.store.sql.tx import Tx

_ACTIVE = tuple(sorted(s.value for s in ACTIVE_STATES))
_TEXT = "type || ' ' || coalesce(key, '') || ' ' || payload || ' ' || coalesce(error, '')"
"""The text a search looks in: one string, lowered and matched once per row."""


BROWSE = "created_at IS NOT NULL"
"""The condition of the browsing indexes (`BROWSE_INDEXES`); a query that states it may use
them."""


def prepare(tx: Tx) -> None:
    """Create the browsing indexes if missing (`BROWSE_INDEXES`: not a migration)."""
    for sql in BROWSE_INDEXES:
        tx.execute(sql)


def like_pattern(text: str) -> str:
    """`%text%` for `LIKE ... ESCAPE '\\'`, with the wildcards of `text` taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _indexed(q: JobQuery, states: Sequence[str]) -> tuple[list[str], list[Any]]:
    """The indexed conditions (domain, type, states, the cursor) and their parameters.

    `BROWSE` (true of every row) lets the query use the browsing indexes, partial on it.
    """
    clauses: list[str] = [BROWSE]
    params: list[Any] = []
    if states:
        clauses.append(f"state IN ({placeholders(len(states))})")
        params.extend(states)
    # A type names its domain (`domain::name`): its jobs are read through the domain's index.
    domain = q.domain if q.domain is not None or q.type is None else q.type.split("::", 1)[0]
    for column, value in (("domain", domain), ("type", q.type)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if q.before is not None:
        clauses.append("id < ?")
        params.append(q.before)
    if q.after is not None:
        clauses.append("id > ?")
        params.append(q.after)
    return clauses, params


def _searched(q: JobQuery) -> tuple[list[str], list[Any]]:
    """The unindexed conditions (tag, text) and their parameters."""
    clauses: list[str] = []
    params: list[Any] = []
    if q.tag:
        clauses.append("coalesce(tags, '') LIKE ? ESCAPE '\\'")
        params.append(like_pattern(json.dumps(q.tag)))
    if q.text:
        clauses.append(f"lower({_TEXT}) LIKE ? ESCAPE '\\'")
        params.append(like_pattern(q.text.lower()))
    return clauses, params


def _where(clauses: Sequence[str]) -> str:
    return f"WHERE {' AND '.join(clauses)}" if clauses else ""


def _listed(tx: Tx, q: JobQuery, order: str) -> list[JobRecord]:
    """Up to limit + 1 rows by the indexed filters; one indexed query per state."""
    found: list[JobRecord] = []
    for state in dict.fromkeys(s.value for s in q.states) or [None]:
        clauses, params = _indexed(q, [] if state is None else [state])
        sql = f"SELECT {JOB_COLUMNS} FROM jobs {_where(clauses)} ORDER BY id {order} LIMIT ?"
        found += [job_from_row(r) for r in tx.execute(sql, (*params, q.limit + 1))]
    found.sort(key=lambda job: job.id, reverse=order == "DESC")
    return found[: q.limit + 1]


def _window(q: JobQuery) -> tuple[str, list[Any], list[str], list[Any]]:
    """The window of rows a search reads (indexed filters, by id, `scan` rows) and the
    conditions applied inside it. Several states are tested inside the window, not by it."""
    states = [s.value for s in dict.fromkeys(q.states)]
    inside, inside_params = _searched(q)
    if len(states) > 1:
        clauses, params = _indexed(q, [])
        inside = [f"state IN ({placeholders(len(states))})", *inside]
        inside_params = [*states, *inside_params]
    else:
        clauses, params = _indexed(q, states)
    return _where(clauses), params, inside, inside_params


def _searched_page(tx: Tx, q: JobQuery, order: str) -> tuple[list[JobRecord], int | None]:
    """Up to limit + 1 matches within the window, and the window's last id if the window was
    full and the page was not (the search stopped there)."""
    where, params, inside, inside_params = _window(q)
    window = f"SELECT {JOB_COLUMNS} FROM jobs {where} ORDER BY id {order} LIMIT ?"
    sql = f"SELECT * FROM ({window}) w {_where(inside)} ORDER BY id {order} LIMIT ?"
    rows = [
        job_from_row(r) for r in tx.execute(sql, (*params, q.scan, *inside_params, q.limit + 1))
    ]
    if len(rows) > q.limit:
        return rows, None
    edge = "min" if order == "DESC" else "max"
    ids = f"SELECT id FROM jobs {where} ORDER BY id {order} LIMIT ?"
    read, last = tx.execute(
        f"SELECT count(*), {edge}(id) FROM ({ids}) w", (*params, q.scan)
    ).fetchone()
    return rows, (int(last) if int(read) >= q.scan else None)


def find_jobs(tx: Tx, q: JobQuery) -> JobPage:
    """A page of jobs matching `q`, newest first (see `Store.find_jobs`)."""
    order = "ASC" if q.after is not None else "DESC"
    scanned_to = None
    if q.scans:
        rows, scanned_to = _searched_page(tx, q, order)
    else:
        rows = _listed(tx, q, order)
    return page_of(q, rows, scanned_to)


def page_of(q: JobQuery, rows: Sequence[JobRecord], scanned_to: int | None) -> JobPage:
    """The page of `rows` (up to limit + 1, in query order) with its cursors."""
    more = len(rows) > q.limit
    kept = list(rows[: q.limit])
    beyond = kept[-1].id if more and kept else scanned_to
    if q.after is None:
        newer = None if q.before is None else (kept[0].id if kept else q.before - 1)
        return JobPage(tuple(kept), older=beyond, newer=newer, scanned_to=scanned_to)
    kept.reverse()
    older = kept[-1].id if kept else q.after + 1
    return JobPage(tuple(kept), older=older, newer=beyond, scanned_to=scanned_to)


def active_counts(tx: Tx) -> dict[tuple[str, JobState], int]:
    """Active jobs per (domain, state), through the index of states."""
    # grouped by state first: SQLite then reads the index of states (the active rows only)
    # rather than the whole table in domain order
    active_sql = (
        f"SELECT domain, state, count(*) FROM jobs WHERE {BROWSE} "
        f"AND state IN ({placeholders(len(_ACTIVE))}) GROUP BY state, domain"
    )
    return {(d, JobState(s)): int(n) for d, s, n in tx.execute(active_sql, _ACTIVE)}


def activity(tx: Tx, now: float, since: float) -> Activity:
    """Jobs ended since `since` through the index of end times, and the latest id through the
    primary key."""
    # The recent ends are read in a subquery (its LIMIT only a cap) so that SQLite groups them
    # after reading them through the index of end times: grouping the whole table in the order
    # of an index on domain or state took a second on a million jobs.
    ended_sql = (
        "SELECT domain, state, count(*) FROM (SELECT domain, state FROM jobs "
        f"WHERE finished_at >= ? AND state IN {TERMINAL_SQL} LIMIT 100000000) w "
        "GROUP BY domain, state"
    )
    ended = {(d, JobState(s)): int(n) for d, s, n in tx.execute(ended_sql, (since,))}
    (latest,) = tx.execute("SELECT max(id) FROM jobs").fetchone()
    return Activity(ended, None if latest is None else int(latest), now)
