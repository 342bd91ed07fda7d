"""Read-only queries: one job, listings, counts, attempts, the oldest waits (`sql.query`)."""

from __future__ import annotations

from collections.abc import Iterable, Reversible, Sequence
from itertools import islice

from wireframe.store.memory.rows import PENDING, SCHEDULED, SUSPENDED, TERMINAL, Job
from wireframe.store.memory.table import Table
from wireframe.store.records import AttemptRecord, JobRecord, JobState

_STATES = {state.value: state for state in JobState}


def get(tb: Table, job_id: int) -> JobRecord | None:
    """One job with its outstanding dependencies, or None."""
    job = tb.jobs.get(job_id)
    if job is None:
        return None
    return job.record(tuple(sorted(job.waiting)) if job.waiting else ())


def list_jobs(
    tb: Table,
    *,
    states: Sequence[JobState] = (),
    domain: str | None = None,
    type: str | None = None,
    parent_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = False,
) -> list[JobRecord]:
    """Jobs matching every given filter, by id."""
    wanted = {_STATES[str(s)] for s in states if str(s) in _STATES}
    if states and not wanted:
        return []  # only states no job can be in
    jobs = tb.jobs
    rows: Reversible[Job]
    if parent_id is not None:
        rows = [jobs[i] for i in sorted(tb.children.get(parent_id, ())) if i in jobs]
    elif wanted and not wanted & TERMINAL:
        found = [job for state in wanted for job in tb.active[state].values()]
        found.sort(key=lambda job: job.id)
        rows = found
    else:
        rows = jobs.values()
    ordered: Iterable[Job] = reversed(rows) if newest_first else rows
    matching = (
        job
        for job in ordered
        if (not wanted or job.state in wanted)
        and (domain is None or job.domain == domain)
        and (type is None or job.type == type)
        and (parent_id is None or job.parent_id == parent_id)
    )
    start = max(offset, 0)
    stop = None if limit < 0 else start + limit
    return [job.record() for job in islice(matching, start, stop)]


def counts(tb: Table) -> dict[tuple[str, str, JobState], int]:
    """How many jobs there are per (domain, type, state)."""
    return {
        (domain, type_, state): n
        for (domain, type_), tally in tb.tallies.items()
        for state, n in tally.items()
        if n
    }


def oldest_pending(tb: Table) -> dict[str, float]:
    """Per domain, how long its longest-waiting ready job has waited (seconds): pending jobs
    since their `ready_at`, scheduled and suspended ones already due since their `run_at`."""
    now = tb.now
    since: dict[str, float] = {}
    for job in tb.active[PENDING].values():
        since[job.domain] = min(job.ready_at, since.get(job.domain, job.ready_at))
    for state in (SCHEDULED, SUSPENDED):
        for job in tb.active[state].values():
            if job.run_at <= now:
                since[job.domain] = min(job.run_at, since.get(job.domain, job.run_at))
    return {domain: max(0.0, now - at) for domain, at in since.items()}


def attempts(tb: Table, job_id: int) -> list[AttemptRecord]:
    """Every attempt of a job, first to last."""
    job = tb.jobs.get(job_id)
    return [] if job is None else job.attempt_records()
