"""`MemoryStore`: the Store protocol over a `Table`, one synchronous step per operation.

Each operation awaits one checkpoint first (a cancel then leaves nothing done) and then runs to
its end without awaiting, so no other task sees it half done. Operations check their input
before they change anything; the one that runs caller code mid-way (a claim's chooser, after
housekeeping changed rows) is undone from a copy of the table if that code raises.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import attrs

from wireframe.store.base import Chooser, Observed, Observers
from wireframe.store.errors import StoreError
from wireframe.store.flowkeys import KeyStats
from wireframe.store.memory import (
    browse,
    claiming,
    control,
    durable,
    finish,
    flows,
    housekeep,
    query,
    schedules,
    workers,
)
from wireframe.store.memory import claim as claim_ops
from wireframe.store.memory import keys as key_ops
from wireframe.store.memory import rates as rate_ops
from wireframe.store.memory.table import Table
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
    WorkerInfo,
    WorkerRecord,
)

T = TypeVar("T")


class MemoryStore(Observed):
    """Jobs in plain Python objects, private to this store and operated on the event loop."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.url = "memory://"
        self.clock = clock
        self._table: Table | None = None
        self._observers = Observers()

    # -- plumbing ---------------------------------------------------------------------------

    async def _op(
        self,
        op: Callable[..., T],
        *args: Any,
        guard: Callable[[Table], bool] | None = None,
    ) -> T:
        """Run `op(table, *args)` as one step; with `guard` true, undo it if it raises."""
        await anyio.lowlevel.checkpoint()  # before the work: a cancel leaves nothing done
        try:
            tb = self._table
            if tb is None:
                raise StoreError(f"{self.url}: the store is not open (call `await store.open()`)")
            tb.begin(self.clock())
            saved = copy.deepcopy(tb) if guard is not None and guard(tb) else None
            try:
                result = op(tb, *args)
            except BaseException:
                tb.transitions.clear()
                if saved is not None:
                    self._table = saved
                raise
            if tb.transitions:
                self._observers.collect(tb.transitions)
                tb.transitions.clear()
            return result
        finally:
            self._observers.deliver()

    # -- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        """Start with an empty table (a closed store forgets its jobs)."""
        if self._table is None:
            self._table = Table()

    async def close(self) -> None:
        """Drop every job."""
        self._table = None

    async def __aenter__(self) -> MemoryStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- jobs -------------------------------------------------------------------------------

    async def submit(self, jobs: Sequence[NewJob]) -> list[SubmitResult]:
        """Insert jobs in one step."""
        if not jobs:
            return []
        guard = _always if len(jobs) > 1 and flows.has_flow(jobs) else None
        return await self._op(flows.submit, jobs, guard=guard)

    async def claim(self, request: ClaimRequest, chooser: Chooser | None = None) -> list[JobRecord]:
        """Lease pending jobs after waking due ones, expiring stale ones and reclaiming leases."""
        guard = housekeep.pending if chooser is not None and request.housekeep else None
        return await self._op(claiming.claim, request, chooser, guard=guard)

    async def housekeep(self) -> bool:
        """Wake due jobs, expire stale ones, reclaim expired leases; True if work may be ready."""
        return await self._op(housekeep.housekeep)

    async def heartbeat(self, beats: Sequence[Beat], lease_ttl: float) -> dict[int, LeaseStatus]:
        """Extend held leases."""
        if not beats:
            return {}
        return await self._op(finish.heartbeat, beats, lease_ttl)

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply fenced outcomes."""
        return await self._op(finish.finish, outcomes) if outcomes else []

    async def finish_and_claim(
        self, outcomes: Sequence[Outcome], request: ClaimRequest, chooser: Chooser | None = None
    ) -> tuple[list[bool], list[JobRecord]]:
        """Apply fenced outcomes and lease pending jobs, in one step; with a chooser, the table
        is copied first so that a chooser that raises leaves it as it was."""
        request = attrs.evolve(request, housekeep=False)

        def op(tb: Table) -> tuple[list[bool], list[JobRecord]]:
            applied = finish.finish(tb, outcomes) if outcomes else []
            return applied, claiming.claim(tb, request, chooser)

        return await self._op(op, guard=None if chooser is None else _always)

    async def cancel(self, job_id: int, reason: str = "cancelled") -> JobState:
        """Cancel a job tree."""
        return await self._op(control.cancel, job_id, reason)

    async def pause(self, job_id: int) -> int:
        """Pause a job tree."""
        return await self._op(control.pause, job_id)

    async def resume(self, job_id: int) -> int:
        """Resume a job tree."""
        return await self._op(control.resume, job_id)

    async def retry(self, job_id: int) -> None:
        """Retry an ended job."""
        await self._op(control.retry, job_id)

    async def get(self, job_id: int) -> JobRecord | None:
        """One job."""
        return await self._op(query.get, job_id)

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
        """Jobs matching the filters."""

        def op(tb: Table) -> list[JobRecord]:
            return query.list_jobs(
                tb,
                states=states,
                domain=domain,
                type=type,
                parent_id=parent_id,
                limit=limit,
                offset=offset,
                newest_first=newest_first,
            )

        return await self._op(op)

    async def counts(self) -> dict[tuple[str, str, JobState], int]:
        """Counts per (domain, type, state)."""
        return await self._op(query.counts)

    async def find_jobs(self, query: JobQuery) -> JobPage:
        """A keyset page of jobs matching `query`, newest first."""
        return await self._op(browse.find_jobs, query)

    async def activity(self, since: float) -> Activity:
        """Jobs ended since `since`, the latest id."""
        return await self._op(browse.activity, since)

    async def prepare_browsing(self) -> None:
        """Nothing to create: the memory store browses its own indexes."""

    async def active_counts(self) -> dict[tuple[str, JobState], int]:
        """Active jobs per (domain, state)."""
        return await self._op(browse.active_counts)

    async def oldest_pending(self) -> dict[str, float]:
        """Per domain, how long its longest-waiting ready job has waited (seconds)."""
        return await self._op(query.oldest_pending)

    async def attempts(self, job_id: int) -> list[AttemptRecord]:
        """Attempts of a job."""
        return await self._op(query.attempts, job_id)

    async def key_running(self, keys: Sequence[str]) -> dict[str, int]:
        """How many jobs of each concurrency key run."""
        return await self._op(key_ops.running_counts, list(keys))

    async def key_stats(self) -> list[KeyStats]:
        """Per (domain, type): jobs held by a key cap, the most jobs one key runs."""
        return await self._op(key_ops.key_stats)

    async def age(self, older_than: float, step: int, cap: int) -> int:
        """Boost long-waiting pending jobs."""
        return await self._op(housekeep.age, older_than, step, cap)

    async def rate_limits(self) -> list[RateState]:
        """Every rate limit claims applied, with its tokens and held jobs now."""
        return await self._op(rate_ops.rate_states)

    async def next_due_at(self) -> float | None:
        """Earliest due time of scheduled or suspended jobs."""
        return await self._op(housekeep.next_due_at)

    async def top_pending_priority(self, domains: Sequence[str], tags: Sequence[str]) -> int | None:
        """Highest pending base priority."""
        return await self._op(claim_ops.top_pending_priority, domains, tags)

    async def prune(
        self,
        finished_before: float,
        *,
        states: Sequence[JobState] = (),
        domain: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete (or with `dry_run` count) old ended jobs."""
        return await self._op(control.prune, finished_before, tuple(states), domain, dry_run)

    # -- schedules --------------------------------------------------------------------------

    async def due_schedules(self, domains: Sequence[str]) -> list[ScheduleRecord]:
        """Due schedules."""
        return await self._op(schedules.due, tuple(domains)) if domains else []

    async def fire_schedule(
        self, schedule_id: int, expected_run_at: float, following_run_at: float | None
    ) -> Fired | None:
        """Fire a due occurrence once."""
        return await self._op(schedules.fire, schedule_id, expected_run_at, following_run_at)

    async def schedules(self) -> list[ScheduleRecord]:
        """Every schedule."""
        return await self._op(schedules.list_all)

    async def get_schedule(self, schedule_id: int) -> ScheduleRecord | None:
        """One schedule."""
        return await self._op(schedules.get, schedule_id)

    async def set_schedule_state(
        self, schedule_id: int, state: str, next_run_at: float | None = None
    ) -> ScheduleRecord:
        """Pause, resume or cancel a schedule."""
        return await self._op(schedules.set_state, schedule_id, state, next_run_at)

    # -- durable jobs -----------------------------------------------------------------------

    async def checkpoints(self, job_id: int) -> list[Checkpoint]:
        """Checkpoints of a job."""
        return await self._op(durable.checkpoints, job_id)

    async def put_checkpoint(
        self, lease: Lease, seq: int, name: str, kind: str, value: str | None, lease_ttl: float
    ) -> LeaseStatus:
        """Record a checkpoint, fenced on the lease."""
        return await self._op(durable.put_checkpoint, lease, seq, name, kind, value, lease_ttl)

    async def spawn_child(
        self, lease: Lease, seq: int, name: str, job: NewJob, lease_ttl: float
    ) -> int | LeaseStatus:
        """Submit a child with its spawn checkpoint, fenced on the lease."""
        return await self._op(durable.spawn_child, lease, seq, name, job, lease_ttl)

    async def emit_event(self, name: str, payload: str | None) -> bool:
        """Set an event latch."""
        return await self._op(durable.emit_event, name, payload)

    async def emit_from_job(
        self, lease: Lease, seq: int, name: str, event: str, payload: str | None, lease_ttl: float
    ) -> bool | LeaseStatus:
        """A running job's emit and its checkpoint, fenced on the lease."""
        return await self._op(durable.emit_from_job, lease, seq, name, event, payload, lease_ttl)

    async def get_event(self, name: str) -> EventRecord | None:
        """An emitted event."""
        return await self._op(durable.get_event, name)

    # -- workers ----------------------------------------------------------------------------

    async def put_worker(self, worker: WorkerInfo, *, starting: bool = False) -> None:
        """Record or refresh a live worker."""
        await self._op(workers.put, worker, starting)

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped."""
        await self._op(workers.remove, worker_id)

    async def workers(self) -> list[WorkerRecord]:
        """Every recorded worker."""
        return await self._op(workers.list_all)

    # -- job types --------------------------------------------------------------------------

    async def record_job_types(self, job_types: Sequence[NewJobType]) -> None:
        """Record job types (each replaces its type's record)."""

        def op(tb: Table) -> None:
            for t in job_types:
                tb.job_types[t.type] = JobTypeRecord(
                    t.type, t.domain, t.name, t.payload, t.settings, t.recorded_by, tb.now
                )

        if job_types:
            await self._op(op)

    async def job_types(self) -> list[JobTypeRecord]:
        """Every recorded job type, by type."""
        return await self._op(lambda tb: [tb.job_types[k] for k in sorted(tb.job_types)])

    # -- flow pauses ------------------------------------------------------------------------

    async def set_paused(self, kind: FlowKind, name: str, paused: bool) -> bool:
        """Pause or resume a domain or job type; True if that changed anything."""
        return await self._op(flows.set_paused, kind, name, paused)

    async def paused(self) -> list[PausedFlow]:
        """Every paused domain and job type."""
        return await self._op(flows.paused)

    async def wait_for_work(self, timeout: float) -> None:  # noqa: ASYNC109
        """Sleep for `timeout`: nobody but this store's own callers can add work."""
        await anyio.sleep(timeout)


def _always(tb: Table) -> bool:
    """A guard that always keeps a copy to undo from."""
    return True
