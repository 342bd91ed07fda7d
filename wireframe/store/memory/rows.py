"""The rows of the memory store: mutable jobs, attempts and schedules, and their records.

A `Job` holds every column of the SQL `jobs` table (see `wireframe.store.sql.schema`) plus the
references its indexes need. Records handed out are built from it and share nothing mutable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from wireframe.store.records import (
    AttemptRecord,
    DependencyPolicy,
    JobRecord,
    JobState,
    Overlap,
    ScheduleRecord,
)

if TYPE_CHECKING:
    from wireframe.store.memory.lanes import Lane

PENDING = JobState.PENDING
SCHEDULED = JobState.SCHEDULED
BLOCKED = JobState.BLOCKED
RUNNING = JobState.RUNNING
WAITING = JobState.WAITING
SUSPENDED = JobState.SUSPENDED
PAUSED = JobState.PAUSED
COMPLETED = JobState.COMPLETED
FAILED = JobState.FAILED
CANCELLED = JobState.CANCELLED
EXPIRED = JobState.EXPIRED
DEPENDENCY_FAILED = JobState.DEPENDENCY_FAILED

TERMINAL: frozenset[JobState] = frozenset(
    {COMPLETED, FAILED, CANCELLED, EXPIRED, DEPENDENCY_FAILED}
)
ACTIVE: tuple[JobState, ...] = tuple(s for s in JobState if s not in TERMINAL)


AttemptRow = tuple[int, "str | None", float, "float | None", "str | None", "str | None"]
"""An earlier attempt of a job: (number, worker, started_at, finished_at, outcome, error)."""


class Job:
    """One row of `jobs`, with the index references of the memory store."""

    __slots__ = (
        "a_error", "a_finished", "a_number", "a_outcome", "a_started", "a_worker",
        "active_children", "aged_at", "attempt", "base_priority", "cancel_requested",
        "child_failed", "claim_seq", "cost", "created_at", "deps", "domain", "error", "expires_at",
        "fail_fast", "fair", "finished_at", "flow_key", "id", "key", "key_cap", "lane",
        "lease_expires_at", "max_attempts", "max_reclaims", "meta", "needs_finalize",
        "new_attempt", "on_dep_failure", "parent_id",
        "pause_requested", "paused_from", "payload", "phase", "pkey", "priority", "progress",
        "progress_message", "rate_key", "ready_at", "reason", "reclaims", "resources", "result",
        "retry_budget", "run_at", "schedule_id", "started_at", "state", "tags", "tally",
        "traceback", "tried", "type", "wait_for", "waiting", "worker_id",
    )  # fmt: skip

    def __init__(
        self,
        job_id: int,
        type: str,
        domain: str,
        payload: str,
        state: JobState,
        priority: int,
        tags: tuple[str, ...],
        resources: dict[str, Any] | None,
        now: float,
        run_at: float,
        max_attempts: int,
        on_dep_failure: DependencyPolicy,
        fail_fast: bool,
        max_reclaims: int,
        tally: dict[JobState, int],
        lane: Lane,
        meta: Mapping[str, str] | None,
    ) -> None:
        self.id = job_id
        self.type = type
        self.domain = domain
        self.payload = payload
        self.state = state
        self.priority = priority
        self.base_priority = priority
        self.key: str | None = None
        self.parent_id: int | None = None
        self.tags = tags
        self.resources = resources
        self.created_at = now
        self.run_at = run_at
        self.ready_at = run_at if run_at > now else now
        self.aged_at: float | None = None
        """When aging last raised its priority (aging's clock; `ready_at` stays put)."""
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.expires_at: float | None = None
        self.attempt = 0
        self.max_attempts = max_attempts
        self.retry_budget = max_attempts
        self.reclaims = 0
        self.max_reclaims = max_reclaims
        self.new_attempt = 1
        self.claim_seq = 0
        self.worker_id: str | None = None
        self.lease_expires_at: float | None = None
        self.result: str | None = None
        self.error: str | None = None
        self.traceback: str | None = None
        self.reason: str | None = None
        self.rate_key: str | None = None
        """Its bucket of a keyed rate limit (`wireframe.store.rates`)."""
        self.cost = 1
        """The tokens it takes from each rate limit on it."""
        self.progress: float | None = None
        self.progress_message: str | None = None
        self.on_dep_failure = on_dep_failure
        self.fail_fast = fail_fast
        self.phase: Literal["execute", "finalize"] = "execute"
        self.needs_finalize = False
        self.active_children = 0
        self.child_failed = False
        self.cancel_requested = False
        self.pause_requested = False
        self.paused_from: JobState | None = None
        self.schedule_id: int | None = None
        self.wait_for: str | None = None
        self.deps: tuple[int, ...] | None = None
        """The dependencies it waits on, kept for a retry (the SQL `deps` column)."""
        self.waiting: set[int] | None = None
        """The dependencies it still has edges to (the SQL `job_deps` rows)."""
        # Its latest attempt row, inline (most jobs have one); the earlier ones in `tried`.
        self.a_number: int | None = None
        self.a_worker: str | None = None
        self.a_started = 0.0
        self.a_finished: float | None = None
        self.a_outcome: str | None = None
        self.a_error: str | None = None
        self.tried: tuple[AttemptRow, ...] = ()
        self.tally = tally
        """The per-state counts of its (domain, type)."""
        self.lane = lane
        """The pending index it joins when pending."""
        self.pkey: int | None = None
        """Its key in the lane's heap while pending (see `lanes.key`)."""
        self.meta = dict(meta) if meta else None
        """Its metadata as submitted (never changed; records get copies)."""
        self.flow_key: str | None = None
        """Its concurrency key (`wireframe.store.flowkeys`), or None."""
        self.key_cap: int | None = None
        """How many jobs of its key may run at once (None: no cap)."""
        self.fair = 0
        """Its fair-share turn (0 without a key)."""

    def record(self, depends_on: tuple[int, ...] = ()) -> JobRecord:
        """A snapshot of the row."""
        return JobRecord(
            self.id, self.type, self.domain, self.payload, self.state, self.priority,
            self.base_priority, self.key, self.parent_id, self.tags,
            dict(self.resources) if self.resources else {}, self.created_at, self.run_at,
            self.started_at, self.finished_at, self.expires_at, self.attempt,
            self.max_attempts, self.claim_seq, self.worker_id, self.lease_expires_at,
            self.result, self.error, self.traceback, self.reason, self.progress,
            self.progress_message, self.on_dep_failure, self.fail_fast, self.phase,
            self.active_children, self.cancel_requested, self.pause_requested,
            self.schedule_id, self.wait_for, self.reclaims, self.max_reclaims, self.ready_at,
            dict(self.meta) if self.meta else {}, self.flow_key, self.key_cap, depends_on,
        )  # fmt: skip

    def open_attempt(self, worker_id: str | None, now: float) -> None:
        """Record the start of its current attempt, or reopen the row when it has one."""
        number = self.attempt
        if self.a_number == number:
            self.a_worker = worker_id
            self.a_finished = self.a_outcome = self.a_error = None
            return
        if self.a_number is not None:
            self.tried += (self._latest_attempt(self.a_number),)
        self.a_number = number
        self.a_worker = worker_id
        self.a_started = now
        self.a_finished = self.a_outcome = self.a_error = None

    def close_attempt(self, now: float, outcome: str, error: str | None) -> None:
        """Record how its current attempt ended (the SQL `CLOSE_ATTEMPT`)."""
        if self.a_number == self.attempt:
            self.a_finished = now
            self.a_outcome = outcome
            self.a_error = error

    def _latest_attempt(self, number: int) -> AttemptRow:
        """Its inline attempt row (numbered `number`) as a tuple, as `tried` keeps the others."""
        return (
            number,
            self.a_worker,
            self.a_started,
            self.a_finished,
            self.a_outcome,
            self.a_error,
        )

    def attempt_records(self) -> list[AttemptRecord]:
        """Snapshots of its attempt rows, first to last."""
        rows = list(self.tried)
        if self.a_number is not None:
            rows.append(self._latest_attempt(self.a_number))
        rows.sort(key=lambda row: row[0])
        return [AttemptRecord(self.id, *row) for row in rows]


class Schedule:
    """One row of `schedules`."""

    __slots__ = (
        "created_at", "domain", "id", "last_job_id", "last_skipped_at", "max_occurrences",
        "next_run_at", "occurrences", "overlap", "skipped", "spec", "state", "template", "type",
    )  # fmt: skip

    def __init__(
        self,
        schedule_id: int,
        type: str,
        domain: str,
        template: str,
        spec: str,
        state: str,
        next_run_at: float | None,
        max_occurrences: int | None,
        last_job_id: int,
        created_at: float,
        overlap: Overlap,
    ) -> None:
        self.id = schedule_id
        self.type = type
        self.domain = domain
        self.template = template
        self.spec = spec
        self.state = state
        self.next_run_at = next_run_at
        self.occurrences = 1
        self.max_occurrences = max_occurrences
        self.last_job_id: int | None = last_job_id
        self.created_at = created_at
        self.overlap = overlap
        self.skipped = 0
        self.last_skipped_at: float | None = None

    def record(self) -> ScheduleRecord:
        """A snapshot of the row."""
        return ScheduleRecord(
            self.id,
            self.type,
            self.domain,
            self.spec,
            self.state,  # type: ignore[arg-type]
            self.next_run_at,
            self.occurrences,
            self.max_occurrences,
            self.last_job_id,
            self.created_at,
            self.overlap,
            self.skipped,
            self.last_skipped_at,
        )


class Ended:
    """A job that has just become terminal and whose consequences still have to be settled."""

    __slots__ = (
        "active_children", "blocked_on", "cascade", "dependents", "error", "id", "parent_id",
        "state",
    )  # fmt: skip

    def __init__(
        self,
        job_id: int,
        state: JobState,
        parent_id: int | None,
        active_children: int,
        error: str | None,
        cascade: bool = True,
        blocked_on: bool = True,
        dependents: bool = True,
    ) -> None:
        self.id = job_id
        self.state = state
        self.parent_id = parent_id
        self.active_children = active_children
        self.error = error
        self.cascade = cascade
        """Whether its dependents are resolved (a job the "fail" policy failed does not)."""
        self.blocked_on = blocked_on
        """Whether it may still hold dependency edges."""
        self.dependents = dependents
        """Whether other jobs may depend on it."""
