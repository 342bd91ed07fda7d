"""Recurring schedules: firing due occurrences exactly once, and pausing, resuming or cancelling."""

from __future__ import annotations

from wireframe.store.errors import InvalidTransitionError, UnknownScheduleError
from wireframe.store.records import Fired, ScheduleRecord
from wireframe.store.rules import fire_action, occurrence
from wireframe.store.sql.cascade import cancel_tree, settle
from wireframe.store.sql.rows import TERMINAL_SQL
from wireframe.store.sql.submit import submit
from wireframe.store.sql.tx import Tx

SCHEDULE_COLUMNS = (
    "id, type, domain, spec, state, next_run_at, occurrences, max_occurrences, last_job_id, "
    "created_at, overlap, skipped, last_skipped_at"
)
SETTABLE_STATES = ("active", "paused", "cancelled")
NOT_STARTED = "('pending', 'scheduled', 'blocked', 'paused')"


def due(tx: Tx, now: float, domains: tuple[str, ...]) -> list[ScheduleRecord]:
    """Active schedules of these domains whose next occurrence is due."""
    marks = ",".join("?" * len(domains))
    return [
        ScheduleRecord(*row)
        for row in tx.execute(
            f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE state = 'active' "
            f"AND next_run_at <= ? AND domain IN ({marks}) ORDER BY next_run_at",
            (now, *domains),
        )
    ]


def fire(
    tx: Tx,
    now: float,
    schedule_id: int,
    expected_run_at: float,
    following_run_at: float | None,
) -> Fired | None:
    """Create the due occurrence, or skip it, as the schedule's overlap policy says.

    The schedule's row is locked first (on SQLite the write transaction is), so of the processes
    firing one occurrence exactly one decides, reading its previous run's state in the same
    transaction. A skipped firing is counted and still moves the schedule to its next time.
    The occurrence runs at `expected_run_at` and, when the schedule has a ttl, expires that
    long after it (so one fired late may expire at once, as a late first occurrence would).
    Returns None when another process fired it first (the expected time no longer matches).
    """
    row = tx.execute(
        "SELECT template, state, next_run_at, occurrences, max_occurrences, last_job_id, overlap "
        f"FROM schedules WHERE id = ?{tx.dialect.lock}",
        (schedule_id,),
    ).fetchone()
    if row is None or row[1] != "active" or row[2] != expected_run_at:
        return None
    template, _, _, occurrences, max_occurrences, last_job_id, overlap = row
    previous = (
        None
        if last_job_id is None
        else tx.execute(
            f"SELECT started_at FROM jobs WHERE id = ? AND state NOT IN {TERMINAL_SQL}",
            (last_job_id,),
        ).fetchone()
    )
    active = previous is not None
    started = previous is not None and previous[0] is not None
    action = fire_action(overlap, active, started)
    if action == "skip":
        tx.execute(
            "UPDATE schedules SET next_run_at = ?, state = ?, skipped = skipped + 1, "
            "last_skipped_at = ? WHERE id = ?",
            (
                following_run_at,
                "active" if following_run_at is not None else "finished",
                expected_run_at,
                schedule_id,
            ),
        )
        return Fired(None, skipped=True, active_job_id=last_job_id)
    job = occurrence(template, expected_run_at, last_job_id if action == "queue" else None)
    result = submit(tx, now, [job])[0]
    occurrences += 1
    finished = following_run_at is None or (
        max_occurrences is not None and occurrences >= max_occurrences
    )
    tx.execute("UPDATE jobs SET schedule_id = ? WHERE id = ?", (schedule_id, result.id))
    tx.execute(
        "UPDATE schedules SET occurrences = ?, last_job_id = ?, next_run_at = ?, state = ? "
        "WHERE id = ?",
        (
            occurrences,
            result.id,
            None if finished else following_run_at,
            "finished" if finished else "active",
            schedule_id,
        ),
    )
    return Fired(result.id, skipped=False, active_job_id=last_job_id if action == "queue" else None)


def get(tx: Tx, schedule_id: int) -> ScheduleRecord | None:
    """One schedule, or None."""
    row = tx.execute(
        f"SELECT {SCHEDULE_COLUMNS} FROM schedules WHERE id = ?", (schedule_id,)
    ).fetchone()
    return ScheduleRecord(*row) if row else None


def list_all(tx: Tx) -> list[ScheduleRecord]:
    """Every schedule, oldest first."""
    return [
        ScheduleRecord(*row)
        for row in tx.execute(f"SELECT {SCHEDULE_COLUMNS} FROM schedules ORDER BY id")
    ]


def set_state(
    tx: Tx,
    now: float,
    schedule_id: int,
    state: str,
    next_run_at: float | None = None,
) -> ScheduleRecord:
    """Pause, resume (at `next_run_at`) or cancel a schedule; cancelling drops an unstarted run."""
    if state not in SETTABLE_STATES:
        raise ValueError(
            f"schedule {schedule_id}: cannot set state {state!r}; "
            f"use one of {', '.join(SETTABLE_STATES)}"
        )
    current = get(tx, schedule_id)
    if current is None:
        raise UnknownScheduleError(schedule_id, f"{state} schedule")
    if current.state in ("cancelled", "finished"):
        raise InvalidTransitionError(f"schedule {schedule_id} has already ended ({current.state})")
    if state == "active":
        tx.execute(
            "UPDATE schedules SET state = 'active', next_run_at = coalesce(?, next_run_at) "
            "WHERE id = ?",
            (next_run_at, schedule_id),
        )
    else:
        tx.execute("UPDATE schedules SET state = ? WHERE id = ?", (state, schedule_id))
    if state == "cancelled" and current.last_job_id is not None:
        unstarted = tx.execute(
            f"SELECT 1 FROM jobs WHERE id = ? AND state IN {NOT_STARTED}", (current.last_job_id,)
        ).fetchone()
        if unstarted:
            settle(tx, now, cancel_tree(tx, now, current.last_job_id, "schedule cancelled"))
    result = get(tx, schedule_id)
    assert result is not None
    return result
