"""Debounce, throttle and flow pauses (the memory twin of `wireframe.store.sql.flows`, whose
docstring says what each does)."""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from wireframe.store.memory.rows import PENDING, SCHEDULED, TERMINAL
from wireframe.store.memory.submit import submit as submit_jobs
from wireframe.store.memory.table import Table
from wireframe.store.records import (
    ClaimRequest,
    Duplicate,
    FlowKind,
    NewJob,
    PausedFlow,
    SubmitResult,
    Submitted,
)


def has_flow(jobs: Sequence[NewJob]) -> bool:
    """True if a job of the batch is debounced or throttled (it is then applied job by job)."""
    return any(job.debounce is not None or job.throttle is not None for job in jobs)


def submit(tb: Table, jobs: Sequence[NewJob]) -> list[SubmitResult]:
    """Insert `jobs` in order (`wireframe.store.memory.submit.submit`), debounced and
    throttled ones as `wireframe.store.sql.flows` says. A batch of several jobs with one of
    them must run with the store's undo guard: a refused job leaves earlier ones applied."""
    if not has_flow(jobs):
        return submit_jobs(tb, jobs)
    results: list[SubmitResult] = []
    plain: list[NewJob] = []
    for job in jobs:
        if job.debounce is None and job.throttle is None:
            plain.append(job)
            continue
        if plain:
            results.extend(submit_jobs(tb, plain))
            plain = []
        results.append(_debounce(tb, job) if job.debounce is not None else _throttle(tb, job))
    if plain:
        results.extend(submit_jobs(tb, plain))
    return results


def _debounce(tb: Table, job: NewJob) -> SubmitResult:
    """Replace the waiting holder's payload and push its run time, or insert the job."""
    assert job.debounce is not None and job.key is not None
    now = tb.now
    run_at = now + job.debounce
    expires_at = None if job.expires_at is None else run_at + job.expires_at - (job.run_at or now)
    holder_id = tb.keys.get((job.type, job.key))
    holder = None if holder_id is None else tb.jobs.get(holder_id)
    if holder is not None and holder.started_at is None and holder.state not in TERMINAL:
        if holder.state is not PENDING and holder.state is not SCHEDULED:
            return Duplicate(holder.id)  # blocked or paused before it ever ran
        holder.payload = job.payload
        tb.reschedule(holder, run_at, expires_at)
        tb.wakes = True
        return Submitted(holder.id, replaced=True)
    (result,) = submit_jobs(tb, [attrs.evolve(job, run_at=run_at, expires_at=expires_at)])
    if holder is not None and holder.state not in TERMINAL:  # it has started: both hold the key
        tb.flows.twins.setdefault((job.type, job.key), set()).update((holder.id, result.id))
    return result


def _throttle(tb: Table, job: NewJob) -> SubmitResult:
    """Refuse the job within its key's period, else submit it and start a new period."""
    assert job.throttle is not None and job.key is not None
    throttles = tb.flows.throttles
    found = throttles.get((job.type, job.key))
    if found is not None and found[0] > tb.now:
        return Duplicate(found[1])
    (result,) = submit_jobs(tb, [job])
    if isinstance(result, Submitted):
        for ended in [k for k, (until, _) in throttles.items() if until <= tb.now]:
            del throttles[ended]
        throttles[(job.type, job.key)] = (tb.now + job.throttle, result.id)
    return result


def set_paused(tb: Table, kind: FlowKind, name: str, paused: bool) -> bool:
    """Pause (or resume) a domain or job type; True if that changed anything."""
    flows = tb.flows.paused
    if paused:
        if (kind, name) in flows:
            return False
        flows[(kind, name)] = tb.now
        return True
    if flows.pop((kind, name), None) is None:
        return False
    tb.wakes = True
    return True


def paused(tb: Table) -> list[PausedFlow]:
    """Every paused domain and job type, domains first, by name."""
    return [PausedFlow(kind, name, at) for (kind, name), at in sorted(tb.flows.paused.items())]  # type: ignore[arg-type]


def unpaused(tb: Table, req: ClaimRequest) -> ClaimRequest:
    """`req` with the paused domains and types excluded (the claim's view of the pauses)."""
    flows = tb.flows.paused
    if not flows:
        return req
    domains = tuple(name for kind, name in flows if kind == "domain")
    types = tuple(name for kind, name in flows if kind == "type")
    return attrs.evolve(
        req,
        exclude_domains=req.exclude_domains + domains,
        exclude_types=req.exclude_types + types,
    )
