"""Claims under rate limits in the memory store: the twin of `wireframe.store.sql.rates`.

The buckets' arrival times live in the table (`Table.rate_buckets`). A claim drops the lanes of
domains whose limit has no token, skips job types likewise, then takes candidates off the lanes
best first and admits them while their tokens last; held jobs keep their places and get a
reason, and the claim goes on past them (up to `SCAN_MAX` jobs) to other keys and types.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from wireframe.store.memory import claim as claims
from wireframe.store.memory.keybook import Admission
from wireframe.store.memory.lanes import Lane
from wireframe.store.memory.rows import PENDING, Job
from wireframe.store.memory.table import Table
from wireframe.store.rates import (
    RATE_REASON,
    Candidate,
    Claimed,
    Gate,
    RateState,
    claimed,
    held_by,
    state_of,
)
from wireframe.store.records import ClaimRequest, JobRecord

Chooser = Callable[[Sequence[JobRecord]], Sequence[int]]

SCAN_MIN = 32
"""The fewest pending jobs a rated claim takes off its lanes at a time."""
SCAN_MAX = 512
"""The most pending jobs one rated claim looks at before it gives up on the rest."""


def claim_rated(
    tb: Table, req: ClaimRequest, chooser: Chooser | None, lanes: list[Lane]
) -> Claimed:
    """Lease up to `req.limit` jobs from `lanes` that the request's rate limits admit."""
    now = tb.now
    for limit in req.rates:
        tb.rate_limits[limit.name] = limit
    gate = Gate(req.rates, {b: t for b, t in tb.rate_buckets.items() if t > now}, now)
    lanes, req = _close(gate, {(lim.name, key) for lim, key in gate.exhausted()}, lanes, req)
    examined, admitted = _admit(tb, gate, req, lanes)
    try:
        chosen = _choose(admitted, chooser, req.limit)
    except BaseException:
        claims.put_back(examined)
        raise
    taken = set(chosen)
    claims.put_back([job for job in examined if job.id not in taken])
    by_id = {job.id: job for job in admitted}
    jobs = [_lease(tb, by_id[job_id], req) for job_id in chosen]
    tb.rate_buckets.update(gate.commit(_candidate(by_id[job_id]) for job_id in chosen))
    for job_id, reason in gate.held.items():
        tb.jobs[job_id].reason = reason
    if len(tb.rate_buckets) > 16 * SCAN_MAX:  # forget full buckets now and then
        tb.rate_buckets = {b: t for b, t in tb.rate_buckets.items() if t > now}
    return claimed(jobs, gate.retry_in)


def _candidate(job: Job) -> Candidate:
    return Candidate(job.id, job.domain, job.type, job.rate_key, job.cost)


def _admit(
    tb: Table, gate: Gate, req: ClaimRequest, lanes: list[Lane]
) -> tuple[list[Job], list[Job]]:
    """Take candidates off the lanes and admit them, best first: (taken off, admitted)."""
    examined: list[Job] = []
    admitted: list[Job] = []
    if not lanes:
        return examined, admitted
    step = max(req.scan, req.limit * 4, SCAN_MIN)
    admission = Admission(tb.flow)  # keys' caps across every batch of this claim
    while lanes and len(admitted) < req.limit and len(examined) < SCAN_MAX:
        batch = claims.candidates(tb, lanes, req, step, admission)
        if not batch:
            break
        examined.extend(batch)
        for job in batch:
            if len(admitted) < req.limit and gate.admit(_candidate(job)):
                admitted.append(job)
        lanes, req = _close(gate, gate.blocked, lanes, req)  # look past them
    return examined, admitted


def _close(
    gate: Gate, buckets: set[tuple[str, str]], lanes: list[Lane], req: ClaimRequest
) -> tuple[list[Lane], ClaimRequest]:
    """Leave out the lanes and types whose unkeyed limit has a bucket in `buckets` (out of
    tokens); the jobs of a keyed bucket out of tokens are skipped one by one."""
    domains = {name for name, _ in buckets if name in gate.by_domain}
    domains = {name for name in domains if not gate.by_domain[name].keyed}
    types = {name for name, _ in buckets if name in gate.by_type and not gate.by_type[name].keyed}
    if domains:
        lanes = [lane for lane in lanes if lane.domain not in domains]
    types -= set(req.exclude_types)
    if types:
        req = attrs.evolve(req, exclude_types=(*req.exclude_types, *sorted(types)))
    return lanes, req


def _choose(admitted: list[Job], chooser: Chooser | None, limit: int) -> list[int]:
    """The ids to lease: the chooser's pick among the admitted jobs, or all of them."""
    if chooser is None or not admitted:
        return [job.id for job in admitted]
    allowed = {job.id for job in admitted}
    picked = chooser([job.record() for job in admitted])
    return list(dict.fromkeys(i for i in picked if i in allowed))[:limit]


def _lease(tb: Table, job: Job, req: ClaimRequest) -> JobRecord:
    if job.reason is not None and job.reason.startswith(RATE_REASON):
        job.reason = None  # it no longer waits for a token
    return claims.lease(tb, job, req)


def rate_states(tb: Table) -> list[RateState]:
    """Every limit a claim applied, with its buckets and held jobs now, by name."""
    now = tb.now
    pending = tb.active[PENDING].values()
    out = []
    for name, limit in sorted(tb.rate_limits.items()):
        tats = [t for (n, _), t in tb.rate_buckets.items() if n == name and t > now]
        held = sum(1 for job in pending if held_by(name, job.reason))
        out.append(state_of(limit, tats, now, held))
    return out
