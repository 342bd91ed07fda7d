"""The Store protocol: every state transition is one atomic operation of the store."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from wireframe.store.flowkeys import KeyStats
from wireframe.store.rates import RateState
from wireframe.store.records import (
    Activity,
    AttemptRecord,
    Beat,
    Checkpoint,
    ClaimRequest,
    EventRecord,
    Fired,
    FlowKind,
    JobPage,
    JobQuery,
    JobRecord,
    JobState,
    JobTypeRecord,
    Lease,
    LeaseStatus,
    NewJob,
    NewJobType,
    Outcome,
    PausedFlow,
    ScheduleRecord,
    SubmitResult,
    Transition,
    WorkerInfo,
    WorkerRecord,
)

log = logging.getLogger("wireframe.store")

Chooser = Callable[[Sequence[JobRecord]], Sequence[int]]
"""Given claim candidates (best first), return the ids to take; called inside the claim."""

Observer = Callable[[Sequence[Transition]], None]
"""Told, on the event loop and after commit, of the moves a store operation made on its own
(and, marked `own`, of where `finish` put the jobs of its outcomes): see `Transition`."""


class Observers:
    """The observers of one store, and the transitions waiting to reach them.

    Operations run in worker threads; they `collect` what they committed there, and the calling
    coroutine `deliver`s it back on the event loop.
    """

    def __init__(self) -> None:
        self._observers: list[Observer] = []
        self._waiting: deque[Transition] = deque()

    def add(self, observer: Observer) -> None:
        """Start telling `observer`."""
        self._observers.append(observer)

    def remove(self, observer: Observer) -> None:
        """Stop telling `observer` (no error if it was not added)."""
        if observer in self._observers:
            self._observers.remove(observer)

    def collect(self, transitions: Sequence[Transition]) -> None:
        """Keep committed transitions for the next delivery (thread-safe)."""
        if transitions and self._observers:
            self._waiting.extend(transitions)

    def deliver(self) -> None:
        """Hand the kept transitions to every observer; an observer's error is logged."""
        if not self._waiting:
            return
        batch: list[Transition] = []
        while self._waiting:
            batch.append(self._waiting.popleft())
        for observer in list(self._observers):
            try:
                observer(batch)
            except Exception:
                log.exception("store observer %r failed", observer)


class Observed:
    """The `observe`/`unobserve` half of a store: its `Observers`, made in `__init__`."""

    _observers: Observers

    def observe(self, observer: Observer) -> None:
        """Tell `observer` of the moves this store's operations report (`Transition`)."""
        self._observers.add(observer)

    def unobserve(self, observer: Observer) -> None:
        """Stop telling `observer`."""
        self._observers.remove(observer)


@runtime_checkable
class Store(Protocol):
    """Durable job storage; a store moves rows and never imports handlers."""

    url: str

    async def open(self) -> None:
        """Connect and bring the schema up to date."""

    async def close(self) -> None:
        """Release connections; the store may be opened again."""

    async def submit(self, jobs: Sequence[NewJob]) -> list[SubmitResult]:
        """Insert jobs in one transaction, returning Submitted or Duplicate for each, in order.

        A debounced job (`NewJob.debounce`) replaces the payload of the waiting job holding its
        key (`Submitted(id, replaced=True)`); a throttled one (`NewJob.throttle`) is a Duplicate
        within its period: see `wireframe.store.sql.flows`.
        """

    async def claim(self, request: ClaimRequest, chooser: Chooser | None = None) -> list[JobRecord]:
        """Lease pending jobs after waking due ones, expiring stale ones and reclaiming leases.

        A lease clears the job's ttl (`expires_at`): a ttl bounds only the wait before the first
        start. A reclaimed lease spends one of the job's `max_reclaims`, not an attempt.
        With `request.rates`, only jobs the rate limits admit are leased, their tokens taken in
        the same transaction; the others stay pending with a reason, and the list returned is
        a `Claimed` saying when the next of them may be taken (`wireframe.store.rates`).
        """

    async def housekeep(self) -> bool:
        """Wake due jobs, expire stale ones, reclaim expired leases; True if work may be ready."""

    async def heartbeat(self, beats: Sequence[Beat], lease_ttl: float) -> dict[int, LeaseStatus]:
        """Extend held leases to now + lease_ttl; report lost leases and control requests."""

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply completions, failures and releases fenced on their leases; True where applied."""

    async def finish_and_claim(
        self, outcomes: Sequence[Outcome], request: ClaimRequest, chooser: Chooser | None = None
    ) -> tuple[list[bool], list[JobRecord]]:
        """`finish(outcomes)`, then `claim(request, chooser)` without its housekeeping: one
        transaction, so a busy worker makes one trip to the store instead of two."""

    async def cancel(self, job_id: int, reason: str = "cancelled") -> JobState:
        """Cancel a job and its descendants (running ones by request); return its state."""

    async def pause(self, job_id: int) -> int:
        """Pause a job and its descendants; return how many were paused or asked to pause."""

    async def resume(self, job_id: int) -> int:
        """Resume a paused job and its paused descendants; return how many moved."""

    async def retry(self, job_id: int) -> None:
        """Run an ended, unsuccessful job again with fresh retry and reclaim budgets.

        A job that ended before its dependencies completed waits again for those still active
        (blocked); while one of them has ended without completing, the retry is refused with
        InvalidTransitionError naming it: retry that dependency first.
        """

    async def get(self, job_id: int) -> JobRecord | None:
        """One job, or None."""

    async def list_jobs(
        self,
        *,
        states: Sequence[JobState] = (),
        domain: str | None = None,
        type: str | None = None,
        parent_id: int | None = None,
        limit: int = 100,
        offset: int = 0,
        newest_first: bool = False,
    ) -> list[JobRecord]:
        """Jobs matching every given filter, ordered by id."""

    async def counts(self) -> dict[tuple[str, str, JobState], int]:
        """Job counts per (domain, type, state)."""

    async def find_jobs(self, query: JobQuery) -> JobPage:
        """A page of jobs matching `query`, newest first, by keyset (never an offset): fast on
        millions of rows for its indexed filters; `tag` and `text` search a bounded window."""

    async def activity(self, since: float) -> Activity:
        """Jobs ended since `since` per (domain, state), and the latest id: what a live view
        reads on every tick, through indexes (its cost follows the rate of ends, not the
        number of jobs)."""

    async def prepare_browsing(self) -> None:
        """Create the indexes browsing reads (`find_jobs`, `activity`, `active_counts`) if they
        are missing. They make every state change a little dearer, so only a store that is
        browsed gets them (the dashboard calls this); without them browsing is correct, only
        slower on large stores. Nothing to do for the memory store."""

    async def active_counts(self) -> dict[tuple[str, JobState], int]:
        """Jobs per (domain, state) in every non-terminal state, through the index of states
        (its cost follows the number of active jobs, not of all jobs)."""

    async def oldest_pending(self) -> dict[str, float]:
        """Per domain, how long (seconds, on the store's clock) its longest-waiting ready job
        has waited: a pending job since its `ready_at`, a scheduled or suspended job that is
        due but not yet woken since its `run_at`. Domains with no such job are left out."""

    async def attempts(self, job_id: int) -> list[AttemptRecord]:
        """Every attempt of a job."""

    async def key_running(self, keys: Sequence[str]) -> dict[str, int]:
        """How many jobs of each stored concurrency key run (keys with none are left out)."""

    async def key_stats(self) -> list[KeyStats]:
        """Per (domain, type) with keyed jobs running or held by a cap: how many pending jobs
        their key's cap holds, and the most jobs one key runs (a scan: for metrics, not claims)."""

    async def age(self, older_than: float, step: int, cap: int) -> int:
        """Boost pending jobs that waited longer than `older_than`; return how many."""

    async def rate_limits(self) -> list[RateState]:
        """Every rate limit a claim has applied (by name, with the policy it last applied): the
        tokens of its emptiest bucket, how many buckets have no token, and how many pending
        jobs it held back when a claim last looked at them."""

    async def next_due_at(self) -> float | None:
        """The earliest time a scheduled or suspended job becomes due."""

    async def top_pending_priority(self, domains: Sequence[str], tags: Sequence[str]) -> int | None:
        """The highest base priority among pending jobs these domains and tags may take."""

    async def prune(
        self,
        finished_before: float,
        *,
        states: Sequence[JobState] = (),
        domain: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete ended jobs that finished before the given time (only of `states` and of
        `domain`, if given); return how many. `dry_run`: delete nothing, count them."""

    async def due_schedules(self, domains: Sequence[str]) -> list[ScheduleRecord]:
        """Active schedules of these domains whose next occurrence is due."""

    async def fire_schedule(
        self, schedule_id: int, expected_run_at: float, following_run_at: float | None
    ) -> Fired | None:
        """Fire a due occurrence once across all processes; None if someone else did.

        The schedule's overlap policy decides, in the same atomic step, whether the occurrence
        is created, queued behind the previous run (blocked on it) or skipped while that run has
        not ended; a skip is counted (`ScheduleRecord.skipped`, `last_skipped_at`). Either way
        the schedule moves on to `following_run_at` (None: it is finished).
        """

    async def schedules(self) -> list[ScheduleRecord]:
        """Every schedule."""

    async def get_schedule(self, schedule_id: int) -> ScheduleRecord | None:
        """One schedule, or None."""

    async def set_schedule_state(
        self, schedule_id: int, state: str, next_run_at: float | None = None
    ) -> ScheduleRecord:
        """Pause, resume (firing next at `next_run_at`) or cancel a schedule."""

    async def checkpoints(self, job_id: int) -> list[Checkpoint]:
        """Every checkpoint of a job, in call order."""

    async def put_checkpoint(
        self, lease: Lease, seq: int, name: str, kind: str, value: str | None, lease_ttl: float
    ) -> LeaseStatus:
        """Record the checkpoint at `seq` and extend the lease, fenced on it: `OK` if recorded,
        else why not (`LOST`, or `CANCEL_REQUESTED` for a job asked to stop or whose child
        failed with fail_fast); nothing is written then."""

    async def spawn_child(
        self, lease: Lease, seq: int, name: str, job: NewJob, lease_ttl: float
    ) -> int | LeaseStatus:
        """Submit a child and its spawn checkpoint atomically, fenced on the lease: the child's
        id, or why the lease refused it (as `put_checkpoint`)."""

    async def emit_event(self, name: str, payload: str | None) -> bool:
        """Set an event latch and wake its waiters; False if it had been emitted already.

        Not fenced: for emits from outside any job. A running job emits with `emit_from_job`.
        """

    async def emit_from_job(
        self, lease: Lease, seq: int, name: str, event: str, payload: str | None, lease_ttl: float
    ) -> bool | LeaseStatus:
        """A running job's emit, fenced on its lease: set the latch `event`, wake its waiters and
        record the emit checkpoint (`seq`, `name`, kind `emit`, value `true` or `false`) in one
        step. Whether this emit set the latch, or why the lease refused it (as
        `put_checkpoint`)."""

    async def get_event(self, name: str) -> EventRecord | None:
        """An emitted event, or None."""

    async def put_worker(self, worker: WorkerInfo, *, starting: bool = False) -> None:
        """Record a live worker, or refresh its row: its heartbeat is now (the store's clock),
        and its start too if `starting`. Rows of workers lost for longer than
        `LOST_WORKERS_KEPT` are deleted meanwhile."""

    async def remove_worker(self, worker_id: str) -> None:
        """Delete a worker's row (it stopped); no error if there is none."""

    async def workers(self) -> list[WorkerRecord]:
        """Every recorded worker by id, `lost` where its last heartbeat is older than its ttl."""

    async def record_job_types(self, job_types: Sequence[NewJobType]) -> None:
        """Record job types in one transaction: each replaces the record of its type, stamped
        with the store's time (workers record theirs when they start)."""

    async def job_types(self) -> list[JobTypeRecord]:
        """Every recorded job type, ordered by type."""

    async def set_paused(self, kind: FlowKind, name: str, paused: bool) -> bool:
        """Pause (`paused=True`) or resume a whole domain or job type, for every process: a
        claim takes none of its jobs while it is paused; running ones go on. True if that
        changed anything (False: it already was so)."""

    async def paused(self) -> list[PausedFlow]:
        """Every paused domain and job type (domains first, by name)."""

    async def wait_for_work(self, timeout: float) -> None:  # noqa: ASYNC109
        """Return when another process may have changed the store, or after `timeout` seconds."""

    def observe(self, observer: Observer) -> None:
        """Tell `observer` of the moves this process's operations report (`Transition`): jobs
        blocked or unblocked, every end a store makes on its own, and where `finish` put the
        jobs of its outcomes (`own`; not reported for a completion that ended its job at
        once)."""

    def unobserve(self, observer: Observer) -> None:
        """Stop telling `observer`."""
