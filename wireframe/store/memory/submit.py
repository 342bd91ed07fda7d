"""Inserting jobs: dedup keys, dependencies, parents and schedules (`wireframe.store.sql.submit`).

A submission is planned first (every check, every value that may fail to compute) and applied
after, so a refused one leaves the table exactly as it was.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wireframe.store.errors import InvalidTransitionError, UnknownJobError
from wireframe.store.memory.cascade import settle
from wireframe.store.memory.normalize import normalized, template_of
from wireframe.store.memory.plain import NewRows, submit_plain
from wireframe.store.memory.rows import (
    BLOCKED,
    CANCELLED,
    COMPLETED,
    DEPENDENCY_FAILED,
    PENDING,
    SCHEDULED,
    TERMINAL,
    Ended,
    Schedule,
)
from wireframe.store.memory.table import Table
from wireframe.store.records import (
    Duplicate,
    JobState,
    NewJob,
    SubmitResult,
    Submitted,
    Transition,
)

Planned = tuple[NewJob, int, JobState, "str | None", list[int], tuple[str, ...], Any, "str | None"]
"""One job of a submission, checked and ready to insert: (job, id, state, error, the
dependencies it waits on (for a job born ended: the one that ended it), tags, resources,
schedule template)."""


class Plan:
    """A checked submission: its results, its rows, and the ids and schedule ids it takes."""

    __slots__ = ("ids", "results", "rows", "schedules")

    def __init__(
        self, results: list[SubmitResult], rows: list[Planned], ids: int, schedules: int
    ) -> None:
        self.results = results
        self.rows = rows
        self.ids = ids
        self.schedules = schedules


def submit(tb: Table, jobs: Sequence[NewJob]) -> list[SubmitResult]:
    """Insert `jobs` (or find their duplicates) in one step, in order."""
    if all(not j.depends_on and j.parent_id is None and j.recurring is None for j in jobs):
        return submit_plain(tb, jobs)
    checked = plan(tb, jobs)
    apply(tb, checked)
    return checked.results


def plan(tb: Table, jobs: Sequence[NewJob]) -> Plan:
    """Check a submission and decide every row; changes nothing (raises on a bad job).

    Ids are reserved for the whole batch, duplicates included (the jobs created take the first
    ones, in order): no id is ever used twice.
    """
    results: list[SubmitResult] = []
    planned: list[Planned] = []
    batch_keys: dict[tuple[str, str], int] = {}
    next_id = tb.last_id
    next_schedule = tb.last_schedule_id
    now = tb.now
    keys = tb.keys
    shape: tuple[Any, ...] | None = None
    norm: tuple[tuple[str, ...], dict[str, Any] | None] = ((), None)
    for job in jobs:
        job_id = next_id + 1
        if job.key is not None and job.debounce is None:  # debounced: `flows` looked
            held = batch_keys.get((job.type, job.key))
            if held is None:
                held = keys.get((job.type, job.key))
            if held is not None:
                results.append(Duplicate(held))
                continue
        if job.depends_on:
            state, error, waiting_on = _initial_state(tb, job)
        else:
            run_at = job.run_at if job.run_at is not None else now
            state, error, waiting_on = (SCHEDULED if run_at > now else PENDING), None, []
        if job.parent_id is not None:
            _check_parent(tb, job.parent_id)
        if job.tags or job.resources:
            this = (job.tags, job.resources)
            if shape is None or this != shape:
                shape, norm = this, normalized(job)
            tags, resources = norm
        else:
            tags, resources = (), None
        template = None
        schedule_id = None
        if job.recurring is not None:
            template = template_of(job, now)
            next_schedule += 1
            schedule_id = next_schedule
        next_id = job_id
        planned.append((job, job_id, state, error, waiting_on, tags, resources, template))
        if job.key is not None and state not in TERMINAL:
            batch_keys[(job.type, job.key)] = job_id
        results.append(Submitted(job_id, schedule_id))
    return Plan(results, planned, len(jobs), next_schedule - tb.last_schedule_id)


def apply(tb: Table, checked: Plan) -> None:
    """Insert the rows of a checked submission."""
    now = tb.now
    born_ended: list[Ended] = []
    tb.last_id += checked.ids
    jobs = tb.jobs
    pending = tb.active[PENDING]
    make = NewRows(tb).make
    for job, job_id, state, error, waiting_on, tags, resources, template in checked.rows:
        row = make(job, job_id, state, tags, resources)
        if (
            state is PENDING
            and job.key is None
            and job.parent_id is None
            and job.expires_at is None
            and template is None
            and job.flow_key is None
        ):
            # A plain job (the hot path): what `Table.insert` would do, inline.
            jobs[job_id] = row
            tally = row.tally
            tally[PENDING] = tally.get(PENDING, 0) + 1
            pending[job_id] = row
            row.lane.enter(row)
            continue
        if job.key is not None:
            row.key = job.key
        tb.flow.stamp(row, job)
        if job.parent_id is not None:
            row.parent_id = job.parent_id
        if job.expires_at is not None:
            row.expires_at = job.expires_at
        if error is not None:
            row.finished_at = now
            row.error = row.reason = error
        if template is not None:
            row.schedule_id = _insert_schedule(tb, job, job_id, template)
        born = state in TERMINAL
        if born and job.depends_on:
            row.deps = job.depends_on
        elif waiting_on and not born:
            row.deps = tuple(waiting_on)
        tb.insert(row)
        if not born:
            for dep in waiting_on:
                tb.add_edge(row, dep)
        if job.parent_id is not None:
            # Counted even when born ended: settling that end counts it out again.
            jobs[job.parent_id].active_children += 1
        if born:
            born_ended.append(Ended(job_id, state, job.parent_id, 0, error))
            ended_by = tuple(waiting_on)
            tb.transitions.append(Transition(job_id, job.type, state, ended_by, error))
        elif state is BLOCKED:
            tb.transitions.append(Transition(job_id, job.type, BLOCKED, tuple(waiting_on)))
    if checked.rows:
        tb.wakes = True
    if born_ended:
        settle(tb, born_ended)


def _initial_state(tb: Table, job: NewJob) -> tuple[JobState, str | None, list[int]]:
    """Decide the state a new job starts in, and the dependencies it still waits on (for a job
    born ended: the one that ended it)."""
    waiting_on: list[int] = []
    jobs = tb.jobs
    for dep in dict.fromkeys(job.depends_on):
        row = jobs.get(dep)
        if row is None:
            raise UnknownJobError(dep, f"submit {job.type}: depends_on")
        dep_state = row.state
        if dep_state is COMPLETED:
            continue
        if dep_state in TERMINAL:
            if job.on_dependency_failure == "ignore":
                continue
            error = f"dependency job {dep} ended as {dep_state}"
            failed = CANCELLED if job.on_dependency_failure == "cancel" else DEPENDENCY_FAILED
            return failed, error, [dep]
        waiting_on.append(dep)
    if waiting_on:
        return BLOCKED, None, waiting_on
    run_at = job.run_at if job.run_at is not None else tb.now
    return (SCHEDULED if run_at > tb.now else PENDING), None, []


def _check_parent(tb: Table, parent_id: int) -> None:
    """A child may only join a parent that exists and has not ended."""
    row = tb.jobs.get(parent_id)
    if row is None:
        raise UnknownJobError(parent_id, "submit: parent")
    if row.state in TERMINAL:
        raise InvalidTransitionError(
            f"submit: parent job {parent_id} has already ended ({row.state}); it takes no children"
        )


def _insert_schedule(tb: Table, job: NewJob, job_id: int, template: str) -> int:
    """Record the schedule of a recurring submission whose first occurrence is `job_id`."""
    rec = job.recurring
    assert rec is not None
    finished = rec.next_run_at is None or rec.max_occurrences == 1
    tb.last_schedule_id += 1
    schedule = Schedule(
        tb.last_schedule_id,
        job.type,
        job.domain,
        template,
        rec.spec,
        "finished" if finished else "active",
        None if finished else rec.next_run_at,
        rec.max_occurrences,
        job_id,
        tb.now,
        rec.overlap,
    )
    tb.schedules[schedule.id] = schedule
    return schedule.id
