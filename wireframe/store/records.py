"""Value types that cross the store boundary: job rows, submissions, outcomes and leases."""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal

import attrs

if TYPE_CHECKING:
    from wireframe.store.ratelimit import RateLimit

if sys.version_info >= (3, 13):
    from typing import TypeVar
else:
    from typing_extensions import TypeVar

R_co = TypeVar("R_co", covariant=True, default=Any)
"""The result type of a submitted job's handler: only type checkers see it (see `Submitted`)."""


class JobState(enum.StrEnum):
    """Where a job is in its life; the last five are terminal."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    BLOCKED = "blocked"
    RUNNING = "running"
    WAITING = "waiting"
    SUSPENDED = "suspended"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    DEPENDENCY_FAILED = "dependency_failed"

    @property
    def terminal(self) -> bool:
        """True for states a job never leaves on its own."""
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset(
    {
        JobState.COMPLETED,
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.EXPIRED,
        JobState.DEPENDENCY_FAILED,
    }
)
ACTIVE_STATES: frozenset[JobState] = frozenset(JobState) - TERMINAL_STATES

DependencyPolicy = Literal["cancel", "fail", "ignore"]
DEFAULT_MAX_RECLAIMS = 3
"""How many times a job's worker may be lost (its lease expired) before the job fails."""
DEPENDENCY_POLICIES: tuple[str, ...] = ("cancel", "fail", "ignore")


@attrs.frozen
class NewJob:
    """A job as the scheduler asks the store to insert it (payload already JSON)."""

    type: str
    domain: str
    payload: str
    priority: int = 10
    run_at: float | None = None
    key: str | None = None
    depends_on: tuple[int, ...] = ()
    on_dependency_failure: DependencyPolicy = "cancel"
    parent_id: int | None = None
    tags: tuple[str, ...] = ()
    resources: Mapping[str, int] = attrs.field(factory=dict)
    expires_at: float | None = None
    max_attempts: int = 1
    fail_fast: bool = True
    recurring: NewSchedule | None = None
    max_reclaims: int = DEFAULT_MAX_RECLAIMS
    """How many lost workers (expired leases) the job survives; they spend no attempt."""
    rate_key: str | None = None
    """Which bucket of a keyed rate limit the job takes its tokens from (see `RateLimit`)."""
    cost: int = 1
    """How many tokens it takes from each rate limit on it."""
    meta: Mapping[str, str] = attrs.field(factory=dict)
    """Metadata that travels with the job (str to str: trace context, tenant...); see
    `wireframe.scheduler.middleware`."""
    debounce: float | None = None
    """Seconds: a waiting job with the same key takes this payload and runs this long after
    now (see `wireframe.store.flows`); None: no debounce."""
    throttle: float | None = None
    """Seconds: refused (Duplicate) within this long of the last accepted submission with the
    same key; None: no throttle."""
    flow_key: str | None = None
    """Its concurrency key, scoped (`wireframe.store.flowkeys`), or None."""
    key_cap: int | None = None
    """How many jobs of its key may run at once (None: no cap, fair share only)."""
    key_weight: float = 1.0
    """Its key's fair-share weight."""


class Overlap(enum.StrEnum):
    """What a recurring schedule does when it fires while its previous run has not ended."""

    SKIP = "skip"
    """Skip the firing (and count it): at most one run at a time. The default."""
    QUEUE = "queue"
    """Keep one firing waiting behind the active run (it starts when that run ends); skip the
    firings that come while one already waits."""
    ALLOW = "allow"
    """Submit every firing: runs may overlap."""


OVERLAPS: tuple[str, ...] = tuple(o.value for o in Overlap)
"""The overlap policies by name, in the order they are documented."""


def to_overlap(value: object) -> Overlap:
    """`value` as an `Overlap` (a member or its name); ValueError naming it otherwise."""
    if isinstance(value, Overlap):
        return value
    if isinstance(value, str) and value in OVERLAPS:
        return Overlap(value)
    raise ValueError(f"overlap={value!r} must be one of {', '.join(OVERLAPS)}")


@attrs.frozen
class NewSchedule:
    """The recurrence attached to a submission: its JSON spec and its next fire time."""

    spec: str
    next_run_at: float | None
    max_occurrences: int | None = None
    overlap: Overlap = attrs.field(default=Overlap.SKIP, converter=to_overlap)
    """What a firing does while the schedule's previous run is still active."""


@attrs.frozen(repr=False)
class Submitted(Generic[R_co]):
    """A submission that created a job (and, for a recurring one, a schedule).

    Generic in the result type of the job's handler, for type checkers only: `submit(payload,
    type=handler)` returns a `Submitted[Result]`, and `result()` of it is a `Result`. The
    store never looks at it; a bare `Submitted` is a `Submitted[Any]`.
    """

    id: int
    schedule_id: int | None = None
    replaced: bool = False
    """True when a debounced submission went into the waiting job `id` (its payload replaced
    and its run time pushed back) instead of creating a job."""

    def __repr__(self) -> str:
        extra = ", replaced=True" if self.replaced else ""
        return f"Submitted(id={self.id!r}, schedule_id={self.schedule_id!r}{extra})"


@attrs.frozen
class Duplicate(Generic[R_co]):
    """A submission refused because an active job already holds its dedup key (generic in
    the result type of that job's handler, as `Submitted` is)."""

    existing_id: int

    @property
    def id(self) -> int:
        """The id of the job that already holds the key."""
        return self.existing_id


SubmitResult = Submitted | Duplicate


@attrs.frozen
class JobRecord:
    """One job row as stored."""

    id: int
    type: str
    domain: str
    payload: str
    state: JobState
    priority: int
    base_priority: int
    key: str | None
    parent_id: int | None
    tags: tuple[str, ...]
    resources: Mapping[str, int]
    created_at: float
    run_at: float
    started_at: float | None
    finished_at: float | None
    expires_at: float | None
    attempt: int
    max_attempts: int
    claim_seq: int
    worker_id: str | None
    lease_expires_at: float | None
    result: str | None
    error: str | None
    traceback: str | None
    reason: str | None
    progress: float | None
    progress_message: str | None
    on_dependency_failure: DependencyPolicy
    fail_fast: bool
    phase: Literal["execute", "finalize"]
    active_children: int
    cancel_requested: bool
    pause_requested: bool
    schedule_id: int | None
    wait_for: str | None
    reclaims: int
    """How many times its lease expired and it was taken back (since its last operator retry)."""
    max_reclaims: int
    """How many reclaims it survives; one more ends it failed."""
    ready_at: float
    """When it last became ready to run (UNIX time): its submission or `run_at`, the wake-up of
    a delay, retry or durable sleep, its unblocking, resumption, preemption or reclaim. The
    queue wait of its next start counts from here."""
    meta: Mapping[str, str] = attrs.field(factory=dict)
    """Metadata given at submission (by the caller or middleware): str to str, never changed."""
    flow_key: str | None = None
    """Its concurrency key, scoped (`wireframe.store.flowkeys`), or None."""
    key_cap: int | None = None
    """How many jobs of its key may run at once (None: no cap)."""
    depends_on: tuple[int, ...] = ()

    @property
    def terminal(self) -> bool:
        """True once the job has ended."""
        return self.state.terminal

    @property
    def attempts_spent(self) -> int:
        """The attempts its retry policy counts: `attempt` less those a lost worker ended."""
        return self.attempt - self.reclaims

    @property
    def lease(self) -> Lease:
        """The fencing token of the current claim."""
        return Lease(self.id, self.claim_seq)


@attrs.frozen
class Lease:
    """A fencing token: writes for a running job succeed only with its current claim number."""

    job_id: int
    claim_seq: int


class LeaseStatus(enum.StrEnum):
    """What a heartbeat learns about a lease."""

    OK = "ok"
    CANCEL_REQUESTED = "cancel_requested"
    PAUSE_REQUESTED = "pause_requested"
    LOST = "lost"


@attrs.frozen
class Beat:
    """A heartbeat for one running job, carrying its latest progress."""

    lease: Lease
    progress: float | None = None
    message: str | None = None


@attrs.frozen
class Complete:
    """The handler returned: store its result (JSON) and move the job on."""

    lease: Lease
    result: str | None
    needs_finalize: bool = False


@attrs.frozen
class Fail:
    """The attempt failed; retry at `retry_at` (an absolute time) or end the job when None."""

    lease: Lease
    error: str
    traceback: str | None = None
    retry_at: float | None = None
    outcome: str = "failed"


ReleaseTo = Literal["pending", "paused", "cancelled", "suspended"]


@attrs.frozen
class Release:
    """Give a running job back without spending an attempt (preempted, stopped, cancelled...)."""

    lease: Lease
    to: ReleaseTo
    reason: str
    run_at: float | None = None
    wait_for: str | None = None
    """For `suspended`: `event:<name>` or `job:<id>` of one of its own children; the job wakes
    early when that happens, at once if it already has (or if `<id>` is not its child)."""


Outcome = Complete | Fail | Release


@attrs.frozen
class Checkpoint:
    """One recorded durable call of a job: its position, identity, kind and JSON value."""

    job_id: int
    seq: int
    name: str
    kind: str
    value: str | None
    created_at: float


@attrs.frozen
class EventRecord:
    """An emitted event: a latch, so the first emit's payload is the one kept."""

    name: str
    payload: str | None
    emitted_at: float


FAR_FUTURE = 9.0e15
"""`run_at` of a suspended job that waits without a deadline."""


@attrs.frozen
class Transition:
    """A move a store operation reports, after commit, to the store's observers.

    Moves the store made on its own while doing something else: a job became blocked on its
    dependencies (at submit or retry), was unblocked when the last one ended, or ended as a
    consequence (expired unstarted; cancelled with its tree, or by a dependency's end under the
    "cancel" policy; dependency_failed under "fail"; a parent failed by a child under fail_fast,
    or completed when its last child ended; failed or cancelled when its worker was lost once
    too often). And, marked `own`, where `finish` put the job of each outcome it applied, for
    every outcome but a completion that ended its job at once (the caller knows that one).
    """

    job_id: int
    job_type: str
    state: JobState
    """The state the job is in after the move."""
    depends_on: tuple[int, ...] = ()
    """For BLOCKED: the dependencies it still waits for; for a job a dependency's end made
    cancelled or dependency_failed: that dependency."""
    error: str | None = None
    """For an end other than COMPLETED: the job's error or reason, as stored."""
    attempt: int = 0
    """The job's attempt number (0: it never started)."""
    children: int = 0
    """For WAITING: how many active children its parent waits for."""
    duration: float | None = None
    """For a parent COMPLETED as its last child ended: seconds from the first start of its
    last attempt to its end."""
    own: bool = False
    """True for the move of the job of one of `finish`'s outcomes (the caller publishes it)."""


@attrs.frozen
class ClaimRequest:
    """What a worker may take: how many, from which domains, with which tags and exclusions."""

    worker_id: str
    limit: int
    lease_ttl: float
    domains: tuple[str, ...]
    tags: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    exclude_domains: tuple[str, ...] = ()
    scan: int = 0
    housekeep: bool = True
    """Also wake due jobs, expire stale ones and reclaim expired leases (a busy worker skips it
    between claims that come quickly after one another)."""
    rates: tuple[RateLimit, ...] = ()
    """The rate limits on the domains and job types it takes (`wireframe.store.rates`)."""


FlowKind = Literal["domain", "type"]
"""What a flow pause applies to: a whole domain, or one job type (``domain::name``)."""


@attrs.frozen
class PausedFlow:
    """A paused domain or job type (`Store.set_paused`): no job of it is claimed until resumed."""

    kind: FlowKind
    name: str
    paused_at: float


@attrs.frozen
class AttemptRecord:
    """One execution of a job: who ran it, when, and how it ended."""

    job_id: int
    attempt: int
    worker_id: str | None
    started_at: float
    finished_at: float | None
    outcome: str | None
    error: str | None


ScheduleState = Literal["active", "paused", "cancelled", "finished"]


@attrs.frozen
class ScheduleRecord:
    """A recurring submission: the template it copies and when it next fires."""

    id: int
    type: str
    domain: str
    spec: str
    state: ScheduleState
    next_run_at: float | None
    occurrences: int
    max_occurrences: int | None
    last_job_id: int | None
    created_at: float
    overlap: Overlap = attrs.field(default=Overlap.SKIP, converter=to_overlap)
    """What a firing does while the previous run is still active (see `Overlap`)."""
    skipped: int = 0
    """How many firings were skipped because a run was still active (they create no job)."""
    last_skipped_at: float | None = None
    """The fire time (UNIX time) of the last skipped firing, or None if none was skipped."""


@attrs.frozen
class Fired:
    """A fired schedule: the new job's id, or None when the occurrence was skipped."""

    job_id: int | None
    skipped: bool
    active_job_id: int | None = None
    """The schedule's run that had not ended: the one a skipped firing left alone, or the one
    a queued occurrence (`Overlap.QUEUE`) waits behind; None otherwise."""


@attrs.frozen
class WorkerInfo:
    """What a running worker records about itself (`Store.put_worker`): who and where it is,
    what it may take, and how many jobs it holds now."""

    worker_id: str
    host: str
    pid: int
    domains: tuple[str, ...]
    tags: tuple[str, ...] = ()
    resources: Mapping[str, int] = attrs.field(factory=dict)
    held: int = 0
    ttl: float = 300.0
    """Seconds without a refresh after which the worker counts as lost (its claim ttl)."""


@attrs.frozen
class WorkerRecord:
    """A worker as the store knows it (`Store.workers`): its `WorkerInfo`, when it started and
    last refreshed its row (the store's clock), and whether it is lost: no refresh within its
    ttl (it crashed, or cannot reach the store)."""

    info: WorkerInfo
    started_at: float
    heartbeat_at: float
    lost: bool


LOST_WORKERS_KEPT = 3600.0
"""Seconds a lost worker stays listed (as lost) before a refresh of any worker deletes it."""


@attrs.frozen
class NewJobType:
    """A job type as a worker (or scheduler) knows it, to record in the store.

    The store keeps the text as given: `payload` describes the payload's fields (JSON, see
    `wireframe types --json`) and `settings` the type's policies (JSON: attempts, priority,
    ttl, timeout, tags, resources...); the scheduler gives both their meaning.
    """

    type: str
    domain: str
    name: str
    payload: str
    settings: str
    recorded_by: str


@attrs.frozen
class JobTypeRecord:
    """A recorded job type: the last description written for it, and when and by whom."""

    type: str
    domain: str
    name: str
    payload: str
    settings: str
    recorded_by: str
    recorded_at: float


SCAN_WINDOW = 10_000
"""How many jobs (newest first) one `find_jobs` call with a `tag` or `text` filter reads at most:
those filters have no index, so a page is searched for in a bounded window of rows."""


@attrs.frozen
class JobQuery:
    """What `Store.find_jobs` looks for: filters, and a keyset cursor instead of an offset.

    `states`, `domain` and `type` are indexed. `tag` (one of the job's tags) and `text` (a
    case-insensitive substring of its type, key, payload or error) are not: a call reads at most
    `scan` rows that match the indexed filters, and the page says where it stopped. `before`
    lists jobs older (smaller id) than it, newest first; `after` lists those newer than it,
    also newest first (the page before); at most one of the two.
    """

    states: tuple[JobState, ...] = ()
    domain: str | None = None
    type: str | None = None
    tag: str | None = None
    text: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = 50
    scan: int = SCAN_WINDOW

    def __attrs_post_init__(self) -> None:
        for name in ("limit", "scan"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"JobQuery {name}={value!r} must be a positive int")
        for name in ("before", "after"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"JobQuery {name}={value!r} must be a job id (an int) or None")
        if self.before is not None and self.after is not None:
            raise ValueError("JobQuery: give before= or after=, not both")

    @property
    def scans(self) -> bool:
        """True if a filter without an index is set (`tag` or `text`)."""
        return bool(self.tag) or bool(self.text)


@attrs.frozen
class JobPage:
    """One page of `Store.find_jobs`, newest first, with the cursors of its neighbours.

    `older`: pass as `before=` for the next page (None: there is none). `newer`: pass as
    `after=` for the page before (None: this is the newest). `scanned_to`: for a search
    (`tag`, `text`) whose window of rows ran out before the page filled, the id it stopped at;
    `older` then continues from there.
    """

    jobs: tuple[JobRecord, ...]
    older: int | None
    newer: int | None
    scanned_to: int | None = None


@attrs.frozen
class Activity:
    """What a live view samples on every tick (`Store.activity`): cheap, indexed reads.

    `ended`: jobs per (domain, state) that ended at or after the `since` asked for.
    `latest_id`: the highest job id (None for an empty store). `now`: the store's clock.
    """

    ended: Mapping[tuple[str, JobState], int]
    latest_id: int | None
    now: float
