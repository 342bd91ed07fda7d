"""Property: no job is ever stranded.

A state machine (hypothesis) drives a store through its API on a fake clock: submit (with ttls,
delays, dependencies, parents and retry and reclaim budgets), claim, complete (with children,
with a finalize), fail (retried or not), release (preempted, paused, cancelled), durable sleeps,
waits for events and for children, heartbeats, lost workers, the clock moving on, housekeeping,
and the operator's cancel, pause, resume, retry and emit.

After every step, every job that has not ended has a way forward:

- it is claimable now (a claim would take it), or
- it has a due time at which housekeeping moves it on: a scheduled or suspended job wakes at its
  `run_at`, a running job's lease runs out at `lease_expires_at` (then it is reclaimed, or
  ends), an unstarted job with a ttl expires at `expires_at`; or
- it waits on another job that has not ended: a blocked job on a dependency, a waiting parent
  (or a parent suspended in a join) on a child; or
- it waits for someone outside: a paused job for an operator's resume, a job suspended on an
  event without a deadline for an emit (of an event not emitted yet), a blocked job whose
  dependency the "fail" policy ended (dependency_failed: that policy stops a failure at the
  dependent, and the jobs behind it wait for an operator to retry it; see
  `test_fail_policy_does_not_cascade`).

And housekeeping keeps the promise of the due times: right after it ran, no due time is in the
past any more, so every pending job is claimable (before version 8 of the schema, a job that
had started, then waited past its ttl, was neither claimed nor expired: pending for ever).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import anyio.from_thread
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from wireframe.store import (
    ACTIVE_STATES,
    FAR_FUTURE,
    Beat,
    ClaimRequest,
    Complete,
    DuplicateKeyError,
    Fail,
    InvalidTransitionError,
    JobRecord,
    JobState,
    Lease,
    LeaseStatus,
    MemoryStore,
    NewJob,
    Outcome,
    Release,
    SqliteMemoryStore,
    Store,
)

LEASE = 10.0
DOMAINS = ("d",)
EVENTS = ("e1", "e2")
PICK = st.integers(0, 1_000_000)
"""An index into a list of the machine's (taken modulo its length): shrinks to the first."""
TIMES = st.sampled_from([0.5, 3.0, 12.0, 40.0])
ENDINGS = (
    "complete",
    "complete, then finalize",
    "fail",
    "fail, retry now",
    "fail, retry later",
    "preempted",
    "preempted, run later",
    "paused",
    "cancelled",
    "sleep",
    "wait for an event",
    "wait for an event, at most 6 s",
    "join",
)


class FakeClock:
    """The stores' clock: it moves only when the machine advances it."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Liveness(RuleBasedStateMachine):
    """The rules and the invariant; a subclass says which store (`open_store`)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self._portal_cm = anyio.from_thread.start_blocking_portal("asyncio")
        self.portal = self._portal_cm.__enter__()
        self.store = self.open_store()
        self.call(self.store.open)
        self.ids: list[int] = []
        self.held: dict[int, Lease] = {}
        """Leases of the workers still alive (a lost worker's lease is dropped from here)."""
        self.emitted: set[str] = set()

    def open_store(self) -> Store:
        """The store under test (not yet open), on `self.clock`."""
        raise NotImplementedError

    def teardown(self) -> None:
        try:
            self.call(self.store.close)
        finally:
            self._portal_cm.__exit__(None, None, None)

    def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        """Run a store coroutine function to its end on the portal's event loop."""
        return self.portal.call(functools.partial(fn, *args, **kw))

    def pick(self, items: list[int], i: int) -> int:
        return items[i % len(items)]

    # -- submitting and claiming ------------------------------------------------------------

    @rule(
        ttl=st.sampled_from([None, 2.0, 8.0]),
        delay=st.sampled_from([None, 3.0]),
        attempts=st.integers(1, 3),
        reclaims=st.integers(0, 2),
        deps=st.lists(PICK, max_size=2),
        parent=st.none() | PICK,
        policy=st.sampled_from(["cancel", "fail", "ignore"]),
        fail_fast=st.booleans(),
    )
    def submit(
        self,
        ttl: float | None,
        delay: float | None,
        attempts: int,
        reclaims: int,
        deps: list[int],
        parent: int | None,
        policy: Any,
        fail_fast: bool,
    ) -> None:
        now = self.clock.now
        start = now + (delay or 0.0)
        job = NewJob(
            "d::t",
            "d",
            "{}",
            run_at=None if delay is None else start,
            depends_on=tuple(self.pick(self.ids, i) for i in deps) if self.ids else (),
            on_dependency_failure=policy,
            parent_id=None if parent is None or not self.ids else self.pick(self.ids, parent),
            expires_at=None if ttl is None else start + ttl,
            max_attempts=attempts,
            fail_fast=fail_fast,
            max_reclaims=reclaims,
        )
        self._submit(job)

    def _submit(self, job: NewJob) -> None:
        try:
            [result] = self.call(self.store.submit, [job])
        except InvalidTransitionError:  # its parent has ended
            return
        self.ids.append(result.id)

    @initialize(attempts=st.integers(1, 3), reclaims=st.integers(0, 2))
    def queue(self, attempts: int, reclaims: int) -> None:
        """Start from a queue of jobs with and without ttls."""
        for ttl in (2.0, 8.0, None):
            expires_at = None if ttl is None else self.clock.now + ttl
            self._submit(
                NewJob(
                    "d::t",
                    "d",
                    "{}",
                    expires_at=expires_at,
                    max_attempts=attempts,
                    max_reclaims=reclaims,
                )
            )

    @rule(limit=st.integers(1, 3), housekeep=st.booleans())
    def claim(self, limit: int, housekeep: bool) -> None:
        """A worker claims (and first housekeeps, as an idle worker does, or not yet)."""
        request = ClaimRequest("w", limit, LEASE, DOMAINS, housekeep=housekeep)
        claimed = self.call(self.store.claim, request)
        for job in claimed:
            self.held[job.id] = job.lease
        if housekeep and len(claimed) < limit:
            self.check(after_housekeeping=True)  # it took every job there was to take

    # -- what a running job does -------------------------------------------------------------

    @precondition(lambda self: self.held)
    @rule(i=PICK, how=st.sampled_from(ENDINGS), child=PICK)
    def finish(self, i: int, how: str, child: int) -> None:
        """The handler returns, raises, is preempted or paused, sleeps, waits or joins."""
        lease = self.held.pop(self.pick(sorted(self.held), i))
        now = self.clock.now
        outcomes: dict[str, Callable[[], Outcome]] = {
            "complete": lambda: Complete(lease, "null"),
            "complete, then finalize": lambda: Complete(lease, "null", needs_finalize=True),
            "fail": lambda: Fail(lease, "boom"),
            "fail, retry now": lambda: Fail(lease, "boom", retry_at=now),
            "fail, retry later": lambda: Fail(lease, "boom", retry_at=now + 5.0),
            "preempted": lambda: Release(lease, "pending", "preempted"),
            "preempted, run later": lambda: Release(lease, "pending", "later", run_at=now + 4),
            "paused": lambda: Release(lease, "paused", "paused"),
            "cancelled": lambda: Release(lease, "cancelled", "cancelled"),
            "sleep": lambda: Release(lease, "suspended", "sleeping", run_at=now + 3.0),
            "wait for an event": lambda: Release(
                lease, "suspended", "waiting", run_at=FAR_FUTURE, wait_for=f"event:{EVENTS[0]}"
            ),
            "wait for an event, at most 6 s": lambda: Release(
                lease, "suspended", "waiting", run_at=now + 6.0, wait_for=f"event:{EVENTS[1]}"
            ),
            # Joining a job that is not its child counts as done: it runs again at once.
            "join": lambda: Release(
                lease,
                "suspended",
                "joining",
                run_at=FAR_FUTURE,
                wait_for=f"job:{self.pick(self.ids, child)}",
            ),
        }
        self.call(self.store.finish, [outcomes[how]()])

    @precondition(lambda self: self.held)
    @rule(i=PICK, ttl=st.sampled_from([None, 2.0]))
    def spawn(self, i: int, ttl: float | None) -> None:
        parent = self.pick(sorted(self.held), i)
        expires_at = None if ttl is None else self.clock.now + ttl
        self._submit(NewJob("d::t", "d", "{}", parent_id=parent, expires_at=expires_at))

    @precondition(lambda self: self.held)
    @rule(i=PICK)
    def heartbeat(self, i: int) -> None:
        job_id = self.pick(sorted(self.held), i)
        status = self.call(self.store.heartbeat, [Beat(self.held[job_id])], LEASE)
        if status[job_id] is LeaseStatus.LOST:
            del self.held[job_id]

    @precondition(lambda self: self.held)
    @rule(i=PICK)
    def lose_worker(self, i: int) -> None:
        """The worker dies: nobody renews or finishes the lease; it runs out in time."""
        del self.held[self.pick(sorted(self.held), i)]

    # -- time and housekeeping ----------------------------------------------------------------

    @rule(seconds=TIMES, then_housekeep=st.booleans())
    def advance(self, seconds: float, then_housekeep: bool) -> None:
        """Time passes; then (or not yet) a worker housekeeps, which keeps its promise: right
        after it, no job waits for a due time that has passed."""
        self.clock.advance(seconds)
        if then_housekeep:
            self.call(self.store.housekeep)
            self.check(after_housekeeping=True)

    # -- the operator ------------------------------------------------------------------------

    @precondition(lambda self: self.ids)
    @rule(i=PICK, action=st.sampled_from(["cancel", "pause", "resume", "retry"]))
    def operate(self, i: int, action: str) -> None:
        try:
            self.call(getattr(self.store, action), self.pick(self.ids, i))
        except (InvalidTransitionError, DuplicateKeyError):
            pass

    @rule(name=st.sampled_from(EVENTS))
    def emit(self, name: str) -> None:
        self.call(self.store.emit_event, name, None)
        self.emitted.add(name)

    # -- the invariant -----------------------------------------------------------------------

    @invariant()
    def every_job_has_a_way_forward(self) -> None:
        self.check(after_housekeeping=False)

    def check(self, *, after_housekeeping: bool) -> None:
        jobs: list[JobRecord] = self.call(
            self.store.list_jobs, states=tuple(ACTIVE_STATES), limit=100_000
        )
        claimable: set[int] = set()

        def look(candidates: Any) -> list[int]:
            claimable.update(c.id for c in candidates)
            return []  # takes none: the claim changes nothing

        probe = ClaimRequest("probe", 1, LEASE, DOMAINS, scan=100_000, housekeep=False)
        self.call(self.store.claim, probe, look)
        active = {job.id: job for job in jobs}
        for job in jobs:
            why = self.way_forward(job, active, claimable, after_housekeeping)
            assert why, f"job {job.id} is stranded at {self.clock.now}: {job}"

    def way_forward(
        self,
        job: JobRecord,
        active: dict[int, JobRecord],
        claimable: set[int],
        after_housekeeping: bool,
    ) -> str | None:
        """Why `job` will move on, or None if nothing will move it."""
        now = self.clock.now

        def due(at: float | None) -> bool:
            return at is not None and (at > now or not after_housekeeping)

        state = job.state
        if state is JobState.PENDING:
            if job.id in claimable:
                return "claimable"
            return "its ttl ends it" if due(job.expires_at) else None
        if state is JobState.RUNNING:
            return "its lease runs out" if due(job.lease_expires_at) else None
        if state is JobState.SCHEDULED:
            return "it wakes" if due(job.run_at) else None
        if state is JobState.PAUSED:
            return "an operator resumes it"
        if state is JobState.WAITING:
            return "a child runs" if self.children_active(job, active) else None
        if state is JobState.BLOCKED:
            record = self.call(self.store.get, job.id)
            if any(dep in active for dep in record.depends_on):
                return "a dependency runs"
            if any(self.stopped_by_fail_policy(dep) for dep in record.depends_on):
                return "an operator retries the dependency"
            return "its ttl ends it" if due(job.expires_at) else None
        assert state is JobState.SUSPENDED, state
        return self.suspended_forward(job, active, due)

    def stopped_by_fail_policy(self, job_id: int) -> bool:
        """True for a job the "fail" policy ended for want of its own dependency: that policy
        stops the failure there, and its dependents wait until an operator retries it."""
        record = self.call(self.store.get, job_id)
        return record is not None and record.state is JobState.DEPENDENCY_FAILED

    def children_active(self, job: JobRecord, active: dict[int, JobRecord]) -> bool:
        return any(other.parent_id == job.id for other in active.values())

    def suspended_forward(
        self, job: JobRecord, active: dict[int, JobRecord], due: Callable[[float], bool]
    ) -> str | None:
        if job.run_at < FAR_FUTURE and due(job.run_at):
            return "it wakes"
        kind, _, key = (job.wait_for or "").partition(":")
        if kind == "event" and key not in self.emitted:
            return "someone emits the event"
        if kind == "job" and int(key) in active and active[int(key)].parent_id == job.id:
            return "the child it joins runs"
        return None


SETTINGS = settings(
    max_examples=80, stateful_step_count=30, deadline=None, database=None, derandomize=True
)


class MemoryLiveness(Liveness):
    def open_store(self) -> Store:
        return MemoryStore(clock=self.clock)


class SqliteLiveness(Liveness):
    def open_store(self) -> Store:
        return SqliteMemoryStore(clock=self.clock)  # the SQL engine, on the event loop


TestMemoryLiveness = MemoryLiveness.TestCase
TestMemoryLiveness.settings = SETTINGS
TestSqliteLiveness = SqliteLiveness.TestCase
TestSqliteLiveness.settings = SETTINGS
