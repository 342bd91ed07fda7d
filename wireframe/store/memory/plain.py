"""Submitting plain jobs (no dependencies, parent or schedule): the hot path of `submit`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wireframe.store.memory.lanes import Lane
from wireframe.store.memory.normalize import shapes_of
from wireframe.store.memory.rows import PENDING, SCHEDULED, Job
from wireframe.store.memory.table import Table
from wireframe.store.records import Duplicate, JobState, NewJob, SubmitResult, Submitted


def submit_plain(tb: Table, jobs: Sequence[NewJob]) -> list[SubmitResult]:
    """Insert jobs without dependencies, parents or schedules, in one pass.

    The same rows as `submit.plan` and `submit.apply` make, with no plan in between: nothing
    about such jobs can be refused but their tags and resources, worked out first.
    """
    shapes = shapes_of(jobs) if any(j.tags or j.resources for j in jobs) else None
    now = tb.now
    keys = tb.keys
    jobs_by_id = tb.jobs
    pending = tb.active[PENDING]
    results: list[SubmitResult] = []
    last = tb.last_id
    tb.last_id += len(jobs)
    place: tuple[str, str, tuple[str, ...]] | None = None
    tally: dict[JobState, int] = {}
    lane: Lane | None = None
    tags: tuple[str, ...] = ()
    resources: dict[str, Any] | None = None
    for i, job in enumerate(jobs):
        if job.key is not None:
            held = keys.get((job.type, job.key))
            if held is not None:
                results.append(Duplicate(held))
                continue
        job_id = last = last + 1
        if shapes is not None:
            tags, resources = shapes[i]
        domain = job.domain
        if place is None or place != (domain, job.type, tags):
            place = (domain, job.type, tags)
            tally = tb.tally(domain, job.type)
            lane = tb.lane(domain, tags)
        assert lane is not None
        run_at = job.run_at if job.run_at is not None else now
        row = Job(
            job_id,
            job.type,
            domain,
            job.payload,
            SCHEDULED if run_at > now else PENDING,
            job.priority,
            tags,
            resources,
            now,
            run_at,
            job.max_attempts,
            job.on_dependency_failure,
            job.fail_fast,
            tally,
            lane,
        )
        if row.state is PENDING and job.key is None and job.expires_at is None:
            jobs_by_id[job_id] = row  # the hot path: what `Table.insert` does, inline
            tally[PENDING] = tally.get(PENDING, 0) + 1
            pending[job_id] = row
            lane.enter(row)
        else:
            row.key = job.key
            row.expires_at = job.expires_at
            tb.insert(row)
        results.append(Submitted(job_id))
    if last > tb.last_id - len(jobs):
        tb.wakes = True
    return results
