"""Recurring schedules: firing due occurrences exactly once, and pausing, resuming or cancelling."""

from __future__ import annotations

import json

from wireframe.store.errors import InvalidTransitionError, UnknownScheduleError
from wireframe.store.records import Fired, NewJob, ScheduleRecord
from wireframe.store.sql.cascade import cancel_tree, settle
from wireframe.store.sql.submit import submit
from wireframe.store.sql.tx import Tx

SCHEDULE_COLUMNS = (
    "id, type, domain, spec, state, next_run_at, occurrences, max_occurrences, last_job_id, "
    "created_at"
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
    """Create the due occurrence, or skip it while the last one has not started yet.

    The occurrence runs at `expected_run_at` and, when the schedule has a ttl, expires that
    long after it (so one fired late may expire at once, as a late first occurrence would).
    Returns None when another process fired it first (the expected time no longer matches).
    """
    row = tx.execute(
        "SELECT template, state, next_run_at, occurrences, max_occurrences, last_job_id "
        f"FROM schedules WHERE id = ?{tx.dialect.lock}",
        (schedule_id,),
    ).fetchone()
    if row is None or row[1] != "active" or row[2] != expected_run_at:
        return None
    template, _, _, occurrences, max_occurrences, last_job_id = row
    busy = (
        last_job_id is not None
        and tx.execute(
            f"SELECT 1 FROM jobs WHERE id = ? AND state IN {NOT_STARTED}", (last_job_id,)
        ).fetchone()
    )
    if busy:
        tx.execute(
            "UPDATE schedules SET next_run_at = ? WHERE id = ?", (following_run_at, schedule_id)
        )
        if following_run_at is None:
            tx.execute("UPDATE schedules SET state = 'finished' WHERE id = ?", (schedule_id,))
        return Fired(None, skipped=True)
    fields = json.loads(template)
    fields["depends_on"] = tuple(fields.get("depends_on") or ())
    fields["tags"] = tuple(fields.get("tags") or ())
    # The ttl counts from each occurrence's own run time; a template stored before the ttl was
    # kept has no "ttl" (and the first occurrence's absolute `expires_at`): no expiry.
    ttl = fields.pop("ttl", None)
    fields["expires_at"] = None if ttl is None else expected_run_at + ttl
    job = NewJob(**{**fields, "run_at": expected_run_at})
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
    return Fired(result.id, skipped=False)


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
