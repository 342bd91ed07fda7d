"""Store conformance: batched writes keep every field exactly as given.

On PostgreSQL the engine writes batches as one statement (`Bulk` in wireframe/store/sql/tx.py):
submit feeds the rows to `COPY ... FROM STDIN`; finish stores results (COMPLETE) and writes
attempt rows (CLOSE_ATTEMPT) with one array parameter per column; a claim with a chooser leases
the chosen rows, and one without picks and leases them in one statement. SQLite runs the same
statements row by row. A quoting or escaping slip in any of those shows up
here as a field that does not read back exactly as it was written.
"""

from __future__ import annotations

import json

import attrs
import pytest

from wireframe.store import (
    AttemptRecord,
    ClaimRequest,
    Complete,
    Duplicate,
    Fail,
    JobRecord,
    JobState,
    NewJob,
    Outcome,
    Release,
    Store,
    Submitted,
)

from store_support import claim_one, complete

pytestmark = pytest.mark.anyio

N = 300
BATCH = 64

# Text that COPY's text format, array literals or placeholder translation could mangle.
NASTY = (
    "plain",
    "single ' and double \" quotes",
    "back\\slash \\N \\. \\\\ and a trailing backslash\\",
    "tab\there\tnewline\nthere\r\ncrlf\rcr",
    "non-ASCII: é ü ß Ω 日本語 🎉 \u2028 \u00a0 \ufeff",
    "NULL",
    "",
    " ",
    "\\N",
    "\\.",
    "\\.\n\\.",
    "null",
    'a,b,{c},"d",(e)',
    "%s %(name)s %% ? ?1 $1 :name",
    "\x01\x07\x1b\x1f control characters",
    '{"looks": "like json"}',
)
TAGS = ((), ("gpu",), ("ssd", "gpu", "é-tag", "q\"t'"))
REQUEST_TAGS = ("gpu", "ssd", "é-tag", "q\"t'")


def nasty(i: int) -> str:
    return NASTY[i % len(NASTY)]


def payload(i: int) -> str:
    """A JSON payload: indented with tabs and newlines (raw, not escaped), some with CRLF."""
    body = {
        "i": i,
        "text": nasty(i),
        "all": list(NASTY) if i % 9 == 0 else [],
        "big": 'x\\y\t"z" é ' * 2000 if i % 50 == 7 else "",
        "nested": {"quote": '"', "backslash": "\\", "unicode": "\u65e5\U0001f600"},
    }
    text = json.dumps(body, ensure_ascii=i % 3 == 0, indent="\t" if i % 2 else None)
    return text.replace("\n", "\r\n") if i % 4 == 1 else text


@attrs.frozen
class Plan:
    """How the test finishes job i."""

    kind: str  # complete | fail | retry | release
    result: str | None = None
    error: str = ""
    traceback: str | None = None
    outcome: str = "failed"


def plan(i: int) -> Plan:
    r = i % 10
    if r in (0, 5):
        return Plan("complete", None)
    if r in (1, 6):
        return Plan("complete", json.dumps(nasty(i), ensure_ascii=False))
    if r == 2:
        return Plan("complete", "null")
    if r == 9:
        return Plan("complete", json.dumps({"big": nasty(i) * 300, "n": [1.5, None, True]}))
    if r == 3:
        return Plan("fail", error=nasty(i), traceback=f"Traceback:\n\t{nasty(i + 1)}")
    if r == 8:
        return Plan("fail", error=nasty(i + 3), traceback=None, outcome="crashed")
    if r == 4:
        return Plan("retry", error=nasty(i + 5), traceback=nasty(i + 7), outcome="timeout")
    assert r == 7
    return Plan("release", result=json.dumps([nasty(i), i]))


def key(i: int) -> str | None:
    if i in (13, 14):
        return key(12)  # 14: same type as 12, a duplicate; 13: another type, not one
    return f"key {i}: {nasty(i)}" if i % 4 == 0 else None


def new_job(i: int, t0: float, dep: int, parent: int) -> NewJob:
    run_at = {1: t0 - 12.345678 - i / 1024, 2: t0 + 0.75 + i / 4096}.get(i % 6)
    return NewJob(
        type=f"bulk::{'ab'[i % 2]}",
        domain="bulk",
        payload=payload(i),
        priority=(i * 7) % 23 - 5,
        run_at=run_at,
        key=key(i),
        depends_on=(dep,) if i % 37 == 5 else (),
        on_dependency_failure=("cancel", "fail", "ignore")[i % 3],
        parent_id=parent if i % 41 == 3 else None,
        tags=TAGS[i % 3],
        resources={1: {"cpu": 2, "mem": i}, 3: {"ключ": 1, 'k"ey': 3}}.get(i % 5, {}),
        expires_at=t0 + 86_400.5 + i / 8 if i % 7 == 4 else None,
        max_attempts=3 if plan(i).kind == "retry" else 1 + i % 2,
        fail_fast=i % 2 == 0,
    )


def worker(k: int) -> str:
    return f"worker {k} '\"\\\t é {nasty(k)}"


@attrs.define
class Seen:
    """What the test did to one job: its claims (time, worker, whether through a chooser) and
    when it was released, finished, and is due to be retried."""

    claims: list[tuple[float, str, bool]] = attrs.field(factory=list)
    finished_at: float | None = None
    released_at: float | None = None
    retry_at: float | None = None


def outcome_for(i: int, job: JobRecord, seen: Seen, now: float) -> Outcome:
    p = plan(i)
    if p.kind == "release" and seen.released_at is None:
        return Release(job.lease, "pending", reason=f"released: {nasty(i + 2)}")
    if p.kind in ("complete", "release"):
        return Complete(job.lease, p.result)
    retry_at = now + 100.5 + i / 1024 if p.kind == "retry" else None
    return Fail(job.lease, p.error, p.traceback, retry_at=retry_at, outcome=p.outcome)


def check_claimed(job: JobRecord, spec: NewJob) -> None:
    assert job.state is JobState.RUNNING
    assert (job.type, job.domain, job.payload) == (spec.type, spec.domain, spec.payload)
    assert job.tags == tuple(sorted(set(spec.tags)))
    assert job.resources == dict(spec.resources)
    assert job.key == spec.key


async def test_bulk_writes_round_trip_every_field(store: Store, clock) -> None:
    clock.now = t0 = 1_700_000_000.123456
    dep_id = (await store.submit([NewJob("dep::t", "dep", "{}")]))[0].id
    parent_id = (await store.submit([NewJob("par::t", "par", "{}", fail_fast=False)]))[0].id
    dep = await claim_one(store, dep_id, domains=("dep",))
    await claim_one(store, parent_id, domains=("par",))

    specs = [new_job(i, t0, dep_id, parent_id) for i in range(N)]
    results = await store.submit(specs)
    assert len(results) == N
    assert results[14] == Duplicate(results[12].id)
    assert isinstance(results[13], Submitted) and results[13].id != results[12].id
    ids: dict[int, int] = {}  # job id -> index
    for i, result in enumerate(results):
        if i != 14:
            assert isinstance(result, Submitted), (i, result)
            ids[result.id] = i
    assert len(ids) == N - 1
    assert sorted(ids) == [r.id for r in results if isinstance(r, Submitted)]
    children = [j for j, i in ids.items() if specs[i].parent_id is not None]
    dependents = [j for j, i in ids.items() if specs[i].depends_on]
    assert children and dependents

    # Every row as inserted, before any claim.
    for job_id, i in ids.items():
        record = await store.get(job_id)
        assert record is not None
        spec = specs[i]
        assert record.payload == spec.payload, i
        assert record.key == spec.key and record.created_at == t0
        assert record.expires_at == spec.expires_at, i
        expected = (
            JobState.BLOCKED
            if spec.depends_on
            else JobState.SCHEDULED
            if spec.run_at is not None and spec.run_at > t0
            else JobState.PENDING
        )
        assert record.state is expected, i
        assert record.depends_on == spec.depends_on
    parent = await store.get(parent_id)
    assert parent is not None and parent.active_children == len(children)

    clock.advance(1.0)  # the scheduled ones are due now
    assert await complete(store, dep.lease)

    seen = {job_id: Seen() for job_id in ids}
    k = 0
    while True:
        clock.advance(1 / 3 + k / 1000)
        claimed_at = clock.now
        request = ClaimRequest(
            worker_id=worker(k),
            limit=BATCH,
            lease_ttl=60.0,
            domains=("bulk",),
            tags=REQUEST_TAGS,
            scan=BATCH,
        )
        if k % 2:  # a chooser: the general claim path
            claimed = await store.claim(request, lambda cands: [c.id for c in reversed(cands)])
        else:
            claimed = await store.claim(request)
        if not claimed:
            break
        assert len(claimed) <= BATCH
        if k == 0:
            assert len(claimed) == BATCH
        for job in claimed:
            check_claimed(job, specs[ids[job.id]])
            seen[job.id].claims.append((claimed_at, worker(k), bool(k % 2)))
        clock.advance(0.25 + k / 4096)
        now = clock.now
        outcomes = [outcome_for(ids[j.id], j, seen[j.id], now) for j in claimed]
        if k == 0:
            groups = [outcomes]  # one mixed call
        else:  # completions without results, with them, failures and releases apart
            groups = [
                [o for o in outcomes if isinstance(o, Complete) and o.result is None],
                [o for o in outcomes if isinstance(o, Complete) and o.result is not None],
                [o for o in outcomes if isinstance(o, Fail)],
                [o for o in outcomes if isinstance(o, Release)],
            ]
        for group in groups:
            if group:
                assert await store.finish(group) == [True] * len(group)
        for o in outcomes:
            s = seen[o.lease.job_id]
            if isinstance(o, Release):
                s.released_at = now
                [attempt] = await store.attempts(o.lease.job_id)
                assert (attempt.finished_at, attempt.outcome, attempt.error) == (
                    now,
                    o.reason,
                    None,
                )
            else:
                s.finished_at = now
                s.retry_at = o.retry_at if isinstance(o, Fail) else None
        k += 1
        assert k < 20, "claims do not run out"

    # Released attempts were reopened by both kinds of claim (the two ways to open attempts).
    reopened = {seen[j].claims[-1][2] for j, i in ids.items() if plan(i).kind == "release"}
    assert reopened == {False, True}
    for job_id, i in ids.items():
        await check_final(store, job_id, specs[i], plan(i), seen[job_id], t0)
    parent = await store.get(parent_id)
    assert parent is not None and parent.state is JobState.RUNNING
    retrying = sum(1 for j in children if plan(ids[j]).kind == "retry")
    assert parent.active_children == retrying


async def check_final(
    store: Store, job_id: int, spec: NewJob, p: Plan, seen: Seen, t0: float
) -> None:
    record = await store.get(job_id)
    assert record is not None
    where = f"job {job_id} ({p.kind})"
    assert seen.finished_at is not None and seen.claims, where
    assert len(seen.claims) == (2 if p.kind == "release" else 1), where
    first_claim, last_worker = seen.claims[0][0], seen.claims[-1][1]

    # Fields the submission wrote, read back exactly.
    assert (record.type, record.domain) == (spec.type, spec.domain)
    assert record.payload == spec.payload, where
    assert (record.priority, record.base_priority) == (spec.priority, spec.priority)
    assert record.key == spec.key and record.parent_id == spec.parent_id
    assert record.tags == tuple(sorted(set(spec.tags)))
    assert record.resources == dict(spec.resources)
    assert record.created_at == t0
    assert record.expires_at is None  # a ttl bounds the wait before the first start only
    assert record.max_attempts == spec.max_attempts
    assert record.on_dependency_failure == spec.on_dependency_failure
    assert record.fail_fast is spec.fail_fast
    assert record.depends_on == ()

    # Fields the claims and the finish wrote.
    assert record.started_at == first_claim
    assert record.attempt == 1
    assert record.claim_seq == len(seen.claims)
    assert record.worker_id is None and record.lease_expires_at is None
    if p.kind in ("complete", "release"):
        assert record.state is JobState.COMPLETED, where
        assert record.result == p.result, where
        assert record.finished_at == seen.finished_at
        assert record.progress == 1.0
        assert (record.error, record.traceback) == (None, None)
        expected_run_at = seen.released_at if p.kind == "release" else spec.run_at
    elif p.kind == "fail":
        assert record.state is JobState.FAILED, where
        assert (record.error, record.traceback) == (p.error, p.traceback), where
        assert record.result is None and record.finished_at == seen.finished_at
        expected_run_at = spec.run_at
    else:
        assert record.state is JobState.SCHEDULED, where
        assert (record.error, record.traceback) == (p.error, p.traceback), where
        assert record.result is None and record.finished_at is None
        assert seen.retry_at is not None
        expected_run_at = seen.retry_at
    assert record.run_at == (t0 if expected_run_at is None else expected_run_at), where

    # The attempt opened by the (last) claim and closed by the finish.
    error = p.error if p.kind in ("fail", "retry") else None
    outcome = "completed" if p.kind in ("complete", "release") else p.outcome
    assert await store.attempts(job_id) == [
        AttemptRecord(job_id, 1, last_worker, first_claim, seen.finished_at, outcome, error)
    ], where


def uniform_batch(t0: float, variant: str) -> list[NewJob]:
    """Jobs that differ only in payload (SQLite inserts them with one statement) or not."""
    base = NewJob(
        type="bulk::u",
        domain="bulk",
        payload="{}",
        priority=7,
        run_at=t0 + 5.5 if variant == "scheduled" else None,
        tags=("gpu", "é-tag") if variant == "scheduled" else (),
        resources={"cpu": 2} if variant == "scheduled" else {},
        expires_at=t0 + 99.25 if variant == "scheduled" else None,
        max_attempts=3,
        fail_fast=False,
    )
    jobs = [attrs.evolve(base, payload=payload(i)) for i in range(N)]
    if variant == "one differs":  # the last job breaks the uniform shape: row-by-row inserts
        jobs[-1] = attrs.evolve(jobs[-1], priority=8)
    return jobs


@pytest.mark.parametrize("variant", ["pending", "scheduled", "one differs"])
async def test_batches_of_one_shape_round_trip_every_field(
    store: Store, clock, variant: str
) -> None:
    clock.now = t0 = 1_700_000_000.5
    first = (await store.submit([NewJob("bulk::before", "bulk", "{}")]))[0].id
    specs = uniform_batch(t0, variant)
    results = await store.submit(specs)
    ids = [r.id for r in results]
    assert all(isinstance(r, Submitted) for r in results)
    assert ids == list(range(first + 1, first + 1 + N))  # ascending, in submission order
    state = JobState.SCHEDULED if variant == "scheduled" else JobState.PENDING
    for job_id, spec in zip(ids, specs, strict=True):
        record = await store.get(job_id)
        assert record is not None
        assert record.payload == spec.payload, job_id
        assert record.state is state
        assert (record.type, record.domain, record.priority) == (
            spec.type,
            spec.domain,
            spec.priority,
        )
        assert record.run_at == (spec.run_at if spec.run_at is not None else t0)
        assert record.tags == tuple(sorted(spec.tags))
        assert record.resources == dict(spec.resources)
        assert record.expires_at == spec.expires_at
        assert (record.max_attempts, record.fail_fast) == (3, False)
        assert record.created_at == t0 and record.key is None and record.parent_id is None
    # The batch's ids were reserved: the next submission continues after them.
    after = (await store.submit([NewJob("bulk::after", "bulk", "{}")]))[0].id
    assert after == ids[-1] + 1


@pytest.mark.parametrize("size", [1, 3, 7])
async def test_small_batches_round_trip_every_field(store: Store, clock, size: int) -> None:
    """Batches too small for COPY (PostgreSQL INSERTs them row by row) keep every field."""
    clock.now = t0 = 1_700_000_000.25
    specs = [
        NewJob(
            type=f"bulk::{'ab'[i % 2]}",
            domain="bulk",
            payload=payload(i),
            priority=i - 3,
            run_at=t0 + 7.5 if i % 4 == 2 else None,
            key=f"small {size} {i}: {nasty(i)}" if i % 3 == 0 else None,
            tags=TAGS[i % 3],
            resources={1: {"cpu": 2, "mem": i}, 3: {"ключ": 1, 'k"ey': 3}}.get(i % 5, {}),
            expires_at=t0 + 99.5 if i % 5 == 4 else None,
            max_attempts=1 + i % 3,
            fail_fast=i % 2 == 0,
        )
        for i in range(len(NASTY))
    ]
    for start in range(0, len(specs), size):
        batch = specs[start : start + size]
        results = await store.submit(batch)
        for spec, result in zip(batch, results, strict=True):
            assert isinstance(result, Submitted)
            record = await store.get(result.id)
            assert record is not None
            assert record.payload == spec.payload and record.key == spec.key
            assert (record.type, record.priority, record.run_at) == (
                spec.type,
                spec.priority,
                spec.run_at if spec.run_at is not None else t0,
            )
            assert record.tags == tuple(sorted(set(spec.tags)))
            assert record.resources == dict(spec.resources)
            assert (record.expires_at, record.max_attempts, record.fail_fast) == (
                spec.expires_at,
                spec.max_attempts,
                spec.fail_fast,
            )
            assert record.state is (JobState.SCHEDULED if spec.run_at else JobState.PENDING)
