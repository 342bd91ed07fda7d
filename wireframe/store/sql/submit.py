"""Inserting jobs: dedup keys, dependencies, parents and schedules, in the caller's transaction."""

from __future__ import annotations

import json
import operator
from collections.abc import Sequence

import attrs

from wireframe.store.errors import InvalidTransitionError, UnknownJobError
from wireframe.store.records import (
    Duplicate,
    JobState,
    NewJob,
    SubmitResult,
    Submitted,
    Transition,
)
from wireframe.store.sql.cascade import settle
from wireframe.store.sql.deps import remember
from wireframe.store.sql.keys import Stamper, insert_keyed
from wireframe.store.sql.locks import lock
from wireframe.store.sql.rows import TERMINAL, TERMINAL_SQL, Ended, placeholders
from wireframe.store.sql.tx import Bulk, Tx

_JOB_COLUMNS = (
    "jobs (id, type, domain, payload, state, priority, base_priority, key, "
    "parent_id, tags, resources, created_at, run_at, ready_at, expires_at, max_attempts, "
    "retry_budget, on_dep_failure, fail_fast, schedule_id, finished_at, error, reason, "
    "max_reclaims, flow_key, key_cap, fair_seq, rate_key, cost, meta)"
)
INSERT_JOB = Bulk(
    f"INSERT INTO {_JOB_COLUMNS} VALUES ({placeholders(30)})",
    # Ids are reserved first; a racing duplicate key fails the COPY as it would an INSERT.
    f"COPY {_JOB_COLUMNS} FROM STDIN",
)


def job_row(
    job: NewJob,
    job_id: int,
    now: float,
    state: str,
    schedule_id: int | None,
    error: str | None,
    fair_seq: int = 0,
) -> tuple[object, ...]:
    """The INSERT_JOB parameters for `job` (`fair_seq`: its turn, `wireframe.store.sql.keys`)."""
    run_at = job.run_at if job.run_at is not None else now
    return (
        job_id,
        job.type,
        job.domain,
        job.payload,
        state,
        job.priority,
        job.priority,
        job.key,
        job.parent_id,
        json.dumps(sorted(set(job.tags))) if job.tags else None,
        json.dumps(dict(job.resources), sort_keys=True) if job.resources else None,
        now,
        run_at,
        max(run_at, now),
        job.expires_at,
        job.max_attempts,
        job.max_attempts,
        job.on_dependency_failure,
        int(job.fail_fast),
        schedule_id,
        now if state in TERMINAL else None,
        error,
        error,
        job.max_reclaims,
        job.flow_key,
        job.key_cap,
        fair_seq,
        job.rate_key,
        job.cost,
        json.dumps(dict(job.meta), sort_keys=True) if job.meta else None,
    )


def submit(tx: Tx, now: float, jobs: Sequence[NewJob]) -> list[SubmitResult]:
    """Insert `jobs` (or find their duplicates) in one transaction, in order."""
    if len(jobs) >= UNIFORM_MIN and _uniform(jobs):
        return _submit_uniform(tx, now, jobs)
    results: list[SubmitResult] = []
    rows: list[tuple[object, ...]] = []
    edges: list[tuple[int, int]] = []
    waits: list[tuple[int, tuple[int, ...]]] = []
    parents: list[int] = []
    born_ended: list[Ended] = []
    batch_keys: dict[tuple[str, str], int] = {}
    # Parents (counted) and dependencies (flagged, and watched for their end): locked first,
    # in the order of `wireframe.store.sql.locks`.
    lock(tx, [row for job in jobs for row in (job.parent_id, *job.depends_on)])
    ids = iter(tx.dialect.reserve_ids(tx, "jobs", len(jobs)))
    stamper = Stamper(tx, jobs)
    for job in jobs:
        if job.key is not None and job.debounce is None:  # debounced: `flows` looked
            held = batch_keys.get((job.type, job.key))
            if held is None:
                found = tx.execute(
                    f"SELECT id FROM jobs WHERE type = ? AND key = ? "
                    f"AND state NOT IN {TERMINAL_SQL} LIMIT 1",
                    (job.type, job.key),
                ).fetchone()
                held = found[0] if found else None
            if held is not None:
                results.append(Duplicate(held))
                continue
        job_id = next(ids)
        state, error, waiting_on, ended_by = _initial_state(tx, now, job)
        if job.parent_id is not None:
            _check_parent(tx, job.parent_id)
            # Counted even when born ended: settling that end counts it out again.
            parents.append(job.parent_id)
        schedule_id = _insert_schedule(tx, now, job, job_id) if job.recurring else None
        rows.append(job_row(job, job_id, now, state, schedule_id, error, stamper.stamp(job)))
        edges.extend((job_id, dep) for dep in waiting_on)
        if waiting_on or (job.depends_on and state in TERMINAL):
            waits.append((job_id, tuple(waiting_on) or job.depends_on))
        if job.key is not None and state not in TERMINAL:
            batch_keys[(job.type, job.key)] = job_id
        if state in TERMINAL:
            born_ended.append(Ended(job_id, state, job.parent_id, 0, error))
            tx.transitions.append(Transition(job_id, job.type, JobState(state), ended_by, error))
        elif state == "blocked":
            tx.transitions.append(Transition(job_id, job.type, JobState.BLOCKED, tuple(waiting_on)))
        results.append(Submitted(job_id, schedule_id))
    if rows:
        tx.bulk(INSERT_JOB, rows)
        tx.wakes = True
    if edges:
        tx.executemany(
            "INSERT INTO job_deps (job_id, dep_id) VALUES (?, ?) ON CONFLICT DO NOTHING", edges
        )
        tx.executemany(
            "UPDATE jobs SET has_dependents = 1 WHERE id = ? AND has_dependents = 0",
            [(dep,) for dep in sorted({dep for _, dep in edges})],
        )
    if waits:
        remember(tx, waits)
    if parents:
        tx.executemany(
            "UPDATE jobs SET active_children = active_children + 1 WHERE id = ?",
            [(p,) for p in parents],
        )
    if born_ended:
        settle(tx, now, born_ended)
    return results


UNIFORM_MIN = 16
"""A batch at least this big whose jobs differ only in payload is one INSERT."""

# Every column but the id and the payload is bound once; the payloads arrive as one JSON array
# and `json_each` turns them into rows inside SQLite (its `key` is the index in the array).
_INSERT_UNIFORM = (
    f"INSERT INTO {_JOB_COLUMNS} SELECT ?1 + key, ?2, ?3, value, "
    + ", ".join(f"?{i}" for i in range(5, 31))
    + " FROM json_each(?4)"
)
# PostgreSQL: the ids (reserved from a sequence, so not always consecutive) arrive as an array
# literal and the payloads as a JSON array; the two are zipped in order.
_INSERT_UNIFORM_PG = (
    f"INSERT INTO {_JOB_COLUMNS} SELECT v.id, ?, ?, v.payload, "
    + ", ".join("?" for _ in range(26))
    + " FROM unnest(?::bigint[], ARRAY(SELECT p FROM json_array_elements_text(?::json)"
    + " WITH ORDINALITY AS e(p, n) ORDER BY n)) AS v(id, payload)"
)


_shape = operator.attrgetter(
    "type",
    "domain",
    "priority",
    "run_at",
    "tags",
    "resources",
    "expires_at",
    "max_attempts",
    "on_dependency_failure",
    "fail_fast",
    "max_reclaims",
    "key_cap",
    "key_weight",
    "rate_key",
    "cost",
    "meta",
)
"""Everything that goes into a plain job's row apart from its payload (and concurrency key)."""


def _uniform(jobs: Sequence[NewJob]) -> bool:
    """True if no job has a key, dependencies, a parent or a schedule, and all share a shape
    (all with a concurrency key or all without)."""
    first = jobs[0]
    shape = _shape(first)
    keyed = first.flow_key is not None
    for job in jobs:
        if (
            job.key is not None
            or (job.flow_key is not None) is not keyed
            or job.depends_on
            or job.parent_id is not None
            or job.recurring is not None
        ):
            return False
        if job is not first and _shape(job) != shape:
            return False
    return True


def _submit_uniform(tx: Tx, now: float, jobs: Sequence[NewJob]) -> list[SubmitResult]:
    """Insert a `_uniform` batch with one statement: the database expands the payload array."""
    ids = tx.dialect.reserve_ids(tx, "jobs", len(jobs))
    state, error, _, _ = _initial_state(tx, now, jobs[0])
    params = list(job_row(jobs[0], ids[0], now, state, None, error))
    if jobs[0].flow_key is not None:
        insert_keyed(tx, _JOB_COLUMNS, params, ids, jobs)
        tx.wakes = True
        return [Submitted(job_id) for job_id in ids]
    payloads = json.dumps([job.payload for job in jobs], ensure_ascii=False)
    if tx.dialect.name == "sqlite":
        params[3] = payloads
        tx.execute(_INSERT_UNIFORM, params)
    else:
        array = "{" + ",".join(map(str, ids)) + "}"
        tx.execute(_INSERT_UNIFORM_PG, (*params[1:3], *params[4:], array, payloads))
    tx.wakes = True
    return [Submitted(job_id) for job_id in ids]


def _initial_state(
    tx: Tx, now: float, job: NewJob
) -> tuple[str, str | None, list[int], tuple[int, ...]]:
    """Decide the state a new job starts in, the dependencies it still waits on, and (for a job
    born ended) the dependency that ended it."""
    waiting_on: list[int] = []
    for dep in dict.fromkeys(job.depends_on):
        # Locked (by `submit`), so a dependency ending concurrently sees the edge added here.
        row = tx.execute("SELECT state FROM jobs WHERE id = ?", (dep,)).fetchone()
        if row is None:
            raise UnknownJobError(dep, f"submit {job.type}: depends_on")
        dep_state = row[0]
        if dep_state == "completed":
            continue
        if dep_state in TERMINAL:
            if job.on_dependency_failure == "ignore":
                continue
            error = f"dependency job {dep} ended as {dep_state}"
            failed = "cancelled" if job.on_dependency_failure == "cancel" else "dependency_failed"
            return failed, error, [], (dep,)
        waiting_on.append(dep)
    if waiting_on:
        return "blocked", None, waiting_on, ()
    run_at = job.run_at if job.run_at is not None else now
    return ("scheduled" if run_at > now else "pending"), None, [], ()


def _check_parent(tx: Tx, parent_id: int) -> None:
    """A child may only join a parent that exists and has not ended."""
    row = tx.execute("SELECT state FROM jobs WHERE id = ?", (parent_id,)).fetchone()  # locked
    if row is None:
        raise UnknownJobError(parent_id, "submit: parent")
    if row[0] in TERMINAL:
        raise InvalidTransitionError(
            f"submit: parent job {parent_id} has already ended ({row[0]}); it takes no children"
        )


def _insert_schedule(tx: Tx, now: float, job: NewJob, job_id: int) -> int:
    """Record the schedule of a recurring submission whose first occurrence is `job_id`.

    The template keeps the ttl relative (`expires_at` minus the first occurrence's run time),
    so that every occurrence expires as long after its own run time as the first one does.
    """
    rec = job.recurring
    assert rec is not None
    template = attrs.asdict(
        attrs.evolve(job, recurring=None, run_at=None, key=None, expires_at=None)
    )
    template["resources"] = dict(job.resources)
    run_at = job.run_at if job.run_at is not None else now
    template["ttl"] = None if job.expires_at is None else job.expires_at - run_at
    finished = rec.next_run_at is None or rec.max_occurrences == 1
    row = tx.execute(
        "INSERT INTO schedules (type, domain, template, spec, state, next_run_at, occurrences, "
        "max_occurrences, last_job_id, created_at, overlap) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
        "RETURNING id",
        (
            job.type,
            job.domain,
            json.dumps(template),
            rec.spec,
            "finished" if finished else "active",
            None if finished else rec.next_run_at,
            1,
            rec.max_occurrences,
            job_id,
            now,
            str(rec.overlap),
        ),
    ).fetchone()
    return int(row[0])
