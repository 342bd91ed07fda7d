"""Debounce, throttle and flow pauses on the SQL engine, in the caller's transaction.

Debounce (`NewJob.debounce`): a submission whose key is held by a *waiting* job of its type (one
that has not started: pending or scheduled, `started_at` NULL) replaces that job's payload and
sets its run time to now + debounce; the result is `Submitted(id, replaced=True)` with the
waiting job's id. With no waiting holder a new job is inserted, even while a job with that key
that has already started runs: the debounced job is the next run. A never-started holder that
is blocked or paused is left alone (`Duplicate`).

Throttle (`NewJob.throttle`): refused (`Duplicate` of the job the last accepted one created)
within `throttle` seconds of the last accepted submission with the same (type, key); an accepted
one starts a new period. The usual key dedup applies too.

Every keyed submission is decided under a lock of its (type, key): PostgreSQL takes a
transaction-scoped advisory lock per key first (`Dialect.lock_name` order: before any job row),
SQLite's write lock already serialises submitters. So concurrent debouncers in any number of
processes end with one waiting job carrying the payload of the last one to commit.

Pauses (`paused_flows`): a claim takes no job of a paused domain or type (`PAUSED_CLAUSE`).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from wireframe.store.records import (
    Duplicate,
    FlowKind,
    NewJob,
    PausedFlow,
    SubmitResult,
    Submitted,
)
from wireframe.store.sql import submit as submit_sql
from wireframe.store.sql.rows import TERMINAL_SQL
from wireframe.store.sql.tx import Tx

PAUSED_CLAUSE = (
    "domain NOT IN (SELECT name FROM paused_flows WHERE kind = 'domain') "
    "AND type NOT IN (SELECT name FROM paused_flows WHERE kind = 'type')"
)
"""A claim's condition: the job's domain and type are not paused."""


def submit_jobs(tx: Tx, now: float, jobs: Sequence[NewJob]) -> list[SubmitResult]:
    """`wireframe.store.sql.submit.submit`, looked up at each call (tests replace it)."""
    return submit_sql.submit(tx, now, jobs)


def submit(tx: Tx, now: float, jobs: Sequence[NewJob]) -> list[SubmitResult]:
    """Insert `jobs` in order (`wireframe.store.sql.submit.submit`), debounced and throttled
    ones as the module docstring says."""
    lock_keys(tx, jobs)
    if not any(job.debounce is not None or job.throttle is not None for job in jobs):
        return submit_jobs(tx, now, jobs)
    results: list[SubmitResult] = []
    plain: list[NewJob] = []
    for job in jobs:
        if job.debounce is None and job.throttle is None:
            plain.append(job)
            continue
        if plain:  # in order: an earlier job of the batch may hold this one's key
            results.extend(submit_jobs(tx, now, plain))
            plain = []
        results.append(
            _debounce(tx, now, job) if job.debounce is not None else _throttle(tx, now, job)
        )
    if plain:
        results.extend(submit_jobs(tx, now, plain))
    return results


def lock_keys(tx: Tx, jobs: Sequence[NewJob]) -> None:
    """PostgreSQL: lock the (type, key) of every keyed job, in name order (one statement).

    The unique index of keys covers only jobs that have not started (a started job and the
    debounced one beside it share a key), so this lock is what keeps two plain submissions
    with one key from both inserting when the first one's job starts at once.
    """
    if tx.dialect.name != "postgresql":
        return
    names = sorted({f"key:{job.type}:{job.key}" for job in jobs if job.key is not None})
    if names:
        tx.execute(
            "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) "
            "FROM unnest(?::text[]) AS k",
            (names,),
        )


def _debounce(tx: Tx, now: float, job: NewJob) -> SubmitResult:
    """Replace the waiting holder's payload and push its run time, or insert the job."""
    assert job.debounce is not None and job.key is not None
    run_at = now + job.debounce
    ttl = None if job.expires_at is None else job.expires_at - (job.run_at or now)
    expires_at = None if ttl is None else run_at + ttl
    row = tx.execute(
        f"SELECT id, state FROM jobs WHERE type = ? AND key = ? AND state NOT IN {TERMINAL_SQL} "
        f"AND started_at IS NULL{tx.dialect.lock}",
        (job.type, job.key),
    ).fetchone()
    if row is not None and row[1] in ("pending", "scheduled"):
        tx.execute(
            "UPDATE jobs SET payload = ?, state = ?, run_at = ?, ready_at = ?, expires_at = ? "
            "WHERE id = ?",
            (
                job.payload,
                "scheduled" if run_at > now else "pending",
                run_at,
                run_at,
                expires_at,
                row[0],
            ),
        )
        tx.wakes = True  # idle workers learn the new due time
        return Submitted(int(row[0]), replaced=True)
    if row is not None:  # blocked or paused before it ever ran: it keeps its payload
        return Duplicate(int(row[0]))
    (result,) = submit_jobs(tx, now, [attrs.evolve(job, run_at=run_at, expires_at=expires_at)])
    return result


def _throttle(tx: Tx, now: float, job: NewJob) -> SubmitResult:
    """Refuse the job within its key's period, else submit it and start a new period."""
    assert job.throttle is not None and job.key is not None
    row = tx.execute(
        "SELECT until, job_id FROM job_throttles WHERE type = ? AND key = ?", (job.type, job.key)
    ).fetchone()
    if row is not None and row[0] > now:
        return Duplicate(int(row[1]))
    (result,) = submit_jobs(tx, now, [job])
    if isinstance(result, Submitted):
        tx.execute("DELETE FROM job_throttles WHERE until <= ?", (now,))
        tx.execute(
            "INSERT INTO job_throttles (type, key, until, job_id) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (type, key) DO UPDATE SET until = excluded.until, "
            "job_id = excluded.job_id",
            (job.type, job.key, now + job.throttle, result.id),
        )
    return result


def set_paused(tx: Tx, now: float, kind: FlowKind, name: str, paused: bool) -> bool:
    """Pause (or resume) a domain or job type; True if that changed anything."""
    if paused:
        cur = tx.execute(
            "INSERT INTO paused_flows (kind, name, paused_at) VALUES (?, ?, ?) "
            "ON CONFLICT (kind, name) DO NOTHING",
            (kind, name, now),
        )
        return cur.rowcount > 0
    cur = tx.execute("DELETE FROM paused_flows WHERE kind = ? AND name = ?", (kind, name))
    if cur.rowcount > 0:
        tx.wakes = True  # its pending jobs may be claimed again
        return True
    return False


def paused(tx: Tx) -> list[PausedFlow]:
    """Every paused domain and job type, domains first, by name."""
    rows = tx.execute(
        "SELECT kind, name, paused_at FROM paused_flows ORDER BY kind, name"
    ).fetchall()
    return [PausedFlow(kind, name, float(at)) for kind, name, at in rows]
