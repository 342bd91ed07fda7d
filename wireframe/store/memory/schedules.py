"""Recurring schedules: firing due occurrences exactly once, and pausing, resuming or cancelling.

The memory twin of `wireframe.store.sql.schedules`.
"""

from __future__ import annotations

from wireframe.store.errors import InvalidTransitionError, UnknownScheduleError
from wireframe.store.memory.cascade import cancel_tree, settle
from wireframe.store.memory.rows import BLOCKED, PAUSED, PENDING, SCHEDULED, TERMINAL
from wireframe.store.memory.submit import apply, plan
from wireframe.store.memory.table import Table
from wireframe.store.records import Fired, ScheduleRecord
from wireframe.store.rules import fire_action, occurrence

SETTABLE_STATES = ("active", "paused", "cancelled")
NOT_STARTED = frozenset({PENDING, SCHEDULED, BLOCKED, PAUSED})


def due(tb: Table, domains: tuple[str, ...]) -> list[ScheduleRecord]:
    """Active schedules of these domains whose next occurrence is due."""
    now = tb.now
    found = [
        s
        for s in tb.schedules.values()
        if s.state == "active"
        and s.next_run_at is not None
        and s.next_run_at <= now
        and s.domain in domains
    ]
    found.sort(key=lambda s: (s.next_run_at, s.id))
    return [s.record() for s in found]


def _not_started(tb: Table, job_id: int | None) -> bool:
    job = tb.jobs.get(job_id) if job_id is not None else None
    return job is not None and job.state in NOT_STARTED


def fire(
    tb: Table, schedule_id: int, expected_run_at: float, following_run_at: float | None
) -> Fired | None:
    """Create the due occurrence, or skip it, as the schedule's overlap policy says.

    Returns None when another caller fired it first (the expected time no longer matches).
    """
    s = tb.schedules.get(schedule_id)
    if s is None or s.state != "active" or s.next_run_at != expected_run_at:
        return None
    last = s.last_job_id
    previous = tb.jobs.get(last) if last is not None else None
    active = previous is not None and previous.state not in TERMINAL
    started = previous is not None and previous.started_at is not None
    action = fire_action(s.overlap, active, started)
    if action == "skip":
        s.next_run_at = following_run_at
        if following_run_at is None:
            s.state = "finished"
        s.skipped += 1
        s.last_skipped_at = expected_run_at
        return Fired(None, skipped=True, active_job_id=last)
    job = occurrence(s.template, expected_run_at, last if action == "queue" else None)
    checked = plan(tb, [job])
    apply(tb, checked)
    job_id = checked.results[0].id
    occurrences = s.occurrences + 1
    finished = following_run_at is None or (
        s.max_occurrences is not None and occurrences >= s.max_occurrences
    )
    row = tb.jobs.get(job_id)
    if row is not None:
        row.schedule_id = schedule_id
    s.occurrences = occurrences
    s.last_job_id = job_id
    s.next_run_at = None if finished else following_run_at
    s.state = "finished" if finished else "active"
    return Fired(job_id, skipped=False, active_job_id=last if action == "queue" else None)


def get(tb: Table, schedule_id: int) -> ScheduleRecord | None:
    """One schedule, or None."""
    s = tb.schedules.get(schedule_id)
    return s.record() if s is not None else None


def list_all(tb: Table) -> list[ScheduleRecord]:
    """Every schedule, oldest first."""
    return [tb.schedules[i].record() for i in sorted(tb.schedules)]


def set_state(
    tb: Table, schedule_id: int, state: str, next_run_at: float | None = None
) -> ScheduleRecord:
    """Pause, resume (at `next_run_at`) or cancel a schedule; cancelling drops an unstarted run."""
    if state not in SETTABLE_STATES:
        raise ValueError(
            f"schedule {schedule_id}: cannot set state {state!r}; "
            f"use one of {', '.join(SETTABLE_STATES)}"
        )
    s = tb.schedules.get(schedule_id)
    if s is None:
        raise UnknownScheduleError(schedule_id, f"{state} schedule")
    if s.state in ("cancelled", "finished"):
        raise InvalidTransitionError(f"schedule {schedule_id} has already ended ({s.state})")
    s.state = state
    if state == "active" and next_run_at is not None:
        s.next_run_at = next_run_at
    if state == "cancelled" and s.last_job_id is not None and _not_started(tb, s.last_job_id):
        settle(tb, cancel_tree(tb, s.last_job_id, "schedule cancelled"))
    return s.record()
