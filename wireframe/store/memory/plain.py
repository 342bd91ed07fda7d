"""Submitting plain jobs (no dependencies, parent or schedule): the hot path of `submit`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from wireframe.store.memory.lanes import Lane
from wireframe.store.memory.normalize import shapes_of
from wireframe.store.memory.rows import PENDING, SCHEDULED, Job
from wireframe.store.memory.table import Table
from wireframe.store.records import Duplicate, JobState, NewJob, SubmitResult, Submitted


class NewRows:
    """Makes the `Job` rows of one submission, with their tally and lane.

    Those are looked up once per run of jobs of one (domain, type, tags), as a batch mostly is.
    """

    __slots__ = ("lane", "now", "place", "tally", "tb")

    def __init__(self, tb: Table) -> None:
        self.tb = tb
        self.now = tb.now
        self.place: tuple[str, str, tuple[str, ...]] | None = None
        self.tally: dict[JobState, int] = {}
        self.lane: Lane | None = None

    def make(
        self,
        job: NewJob,
        job_id: int,
        state: JobState | None,
        tags: tuple[str, ...],
        resources: dict[str, Any] | None,
    ) -> Job:
        """The row of `job` (state None: pending, or scheduled if it runs later); not inserted."""
        domain = job.domain
        place = (domain, job.type, tags)
        if place != self.place:
            self.place = place
            self.tally = self.tb.tally(domain, job.type)
            self.lane = self.tb.lane(domain, tags)
        lane = self.lane
        assert lane is not None
        now = self.now
        run_at = job.run_at if job.run_at is not None else now
        if state is None:
            state = SCHEDULED if run_at > now else PENDING
        row = Job(
            job_id,
            job.type,
            domain,
            job.payload,
            state,
            job.priority,
            tags,
            resources,
            now,
            run_at,
            job.max_attempts,
            job.on_dependency_failure,
            job.fail_fast,
            job.max_reclaims,
            self.tally,
            lane,
            job.meta,
        )
        if job.rate_key is not None or job.cost != 1:
            row.rate_key, row.cost = job.rate_key, job.cost
        return row


def submit_plain(tb: Table, jobs: Sequence[NewJob]) -> list[SubmitResult]:
    """Insert jobs without dependencies, parents or schedules, in one pass.

    The same rows as `submit.plan` and `submit.apply` make, with no plan in between: nothing
    about such jobs can be refused but their tags and resources, worked out first.
    """
    shapes = shapes_of(jobs) if any(j.tags or j.resources for j in jobs) else None
    keys = tb.keys
    jobs_by_id = tb.jobs
    pending = tb.active[PENDING]
    results: list[SubmitResult] = []
    last = tb.last_id
    tb.last_id += len(jobs)
    make = NewRows(tb).make
    tags: tuple[str, ...] = ()
    resources: dict[str, Any] | None = None
    for i, job in enumerate(jobs):
        if job.key is not None and job.debounce is None:  # debounced: `flows` looked
            held = keys.get((job.type, job.key))
            if held is not None:
                results.append(Duplicate(held))
                continue
        job_id = last = last + 1
        if shapes is not None:
            tags, resources = shapes[i]
        row = make(job, job_id, None, tags, resources)
        if (
            row.state is PENDING
            and job.key is None
            and job.expires_at is None
            and job.flow_key is None
        ):
            jobs_by_id[job_id] = row  # the hot path: what `Table.insert` does, inline
            tally = row.tally
            tally[PENDING] = tally.get(PENDING, 0) + 1
            pending[job_id] = row
            row.lane.enter(row)
        else:
            row.key = job.key
            row.expires_at = job.expires_at
            tb.flow.stamp(row, job)
            tb.insert(row)
        results.append(Submitted(job_id))
    if last > tb.last_id - len(jobs):
        tb.wakes = True
    return results
