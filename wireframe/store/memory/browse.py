"""Keyset pages of jobs and the live view's sample for the memory store (`sql.browse`)."""

from __future__ import annotations

from collections.abc import Iterable

from wireframe.store.memory.rows import ACTIVE, TERMINAL, Job
from wireframe.store.memory.table import Table
from wireframe.store.records import Activity, JobPage, JobQuery, JobState
from wireframe.store.sql.browse import page_of


def _matches(job: Job, q: JobQuery, states: frozenset[JobState]) -> bool:
    if states and job.state not in states:
        return False
    if q.domain is not None and job.domain != q.domain:
        return False
    if q.type is not None and job.type != q.type:
        return False
    if q.tag and q.tag not in job.tags:
        return False
    if q.text:
        needle = q.text.lower()
        fields = (job.type, job.key or "", job.payload, job.error or "")
        return any(needle in field.lower() for field in fields)
    return True


def _candidates(tb: Table, q: JobQuery) -> Iterable[Job]:
    """Jobs past the cursor, in query order (newest first unless `after`)."""
    if q.after is not None:
        return (job for job in tb.jobs.values() if job.id > q.after)
    before = q.before
    return (job for job in reversed(tb.jobs.values()) if before is None or job.id < before)


def find_jobs(tb: Table, q: JobQuery) -> JobPage:
    """A page of jobs matching `q`, newest first; a search reads at most `q.scan` jobs."""
    states = frozenset(q.states)
    rows = []
    read = 0
    last: int | None = None
    for job in _candidates(tb, q):
        if q.scans:
            if read >= q.scan:
                break
            read += 1
            last = job.id
        if _matches(job, q, states):
            rows.append(job.record())
            if len(rows) > q.limit:
                break
    scanned_to = last if q.scans and read >= q.scan and len(rows) <= q.limit else None
    return page_of(q, rows, scanned_to)


def active_counts(tb: Table) -> dict[tuple[str, JobState], int]:
    """Active jobs per (domain, state)."""
    active: dict[tuple[str, JobState], int] = {}
    for state in ACTIVE:
        for job in tb.active[state].values():
            key = (job.domain, state)
            active[key] = active.get(key, 0) + 1
    return active


def activity(tb: Table, since: float) -> Activity:
    """Jobs ended since `since`, the latest id."""
    ended: dict[tuple[str, JobState], int] = {}
    for job in tb.jobs.values():
        if job.state in TERMINAL and job.finished_at is not None and job.finished_at >= since:
            key = (job.domain, job.state)
            ended[key] = ended.get(key, 0) + 1
    latest = next(reversed(tb.jobs), None)
    return Activity(ended, latest, tb.now)
