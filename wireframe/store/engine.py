"""The Store methods, written once over the SQL engine; a store supplies how one runs (`_op`).

SQLite and PostgreSQL differ in how an operation reaches the database (on the event loop or a
worker thread; a connection pool, reconnects and retries), not in what it does: each method here
names the engine operation and the hints a store may use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import attrs

from wireframe.store.base import Chooser, Observed
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
    WorkerInfo,
    WorkerRecord,
)
from wireframe.store.sql import (
    attempts,
    browse,
    control,
    durable,
    finish,
    flows,
    query,
    schedules,
    workers,
)
from wireframe.store.sql import claim as claim_sql
from wireframe.store.sql import job_types as job_types_sql
from wireframe.store.sql import keys as keys_sql
from wireframe.store.sql import rates as rate_sql
from wireframe.store.sql.flows import submit as submit_sql
from wireframe.store.sql.tx import Tx

T = TypeVar("T")


def finish_then_claim(
    tx: Tx,
    now: float,
    outcomes: list[Outcome],
    request: ClaimRequest,
    chooser: Chooser | None,
    token: str | None,
) -> tuple[list[bool], list[JobRecord]]:
    """`finish`, then `claim` in the same transaction (`EngineStore.finish_and_claim`)."""
    applied = finish.finish(tx, now, outcomes) if outcomes else []
    return applied, claim_sql.claim(tx, now, request, chooser, token)


INLINE_SUBMIT = 100
"""Submissions of up to this many jobs count as small (a store may run them on the loop)."""


class EngineStore(Observed):
    """Every Store operation as one transaction of the SQL engine, run by `_op`."""

    async def _op(
        self,
        op: Callable[..., T],
        *args: Any,
        write: bool = True,
        inline: bool = False,
        retry_commit: bool = True,
    ) -> T:
        """Run `op(tx, now, *args)` as one transaction.

        `write`: it changes rows; `inline`: it is small (a store may run it on the event loop);
        `retry_commit`: it may be sent again when the connection drops while committing.
        """
        raise NotImplementedError

    # -- jobs -------------------------------------------------------------------------------

    async def submit(self, jobs: Sequence[NewJob]) -> list[SubmitResult]:
        """Insert jobs in one transaction."""
        if not jobs:
            return []
        return await self._op(
            submit_sql, list(jobs), inline=len(jobs) <= INLINE_SUBMIT, retry_commit=False
        )

    async def housekeep(self) -> bool:
        """Wake due jobs, expire stale ones, reclaim expired leases; True if work may be ready."""
        return await self._op(claim_sql.housekeep, inline=True)

    async def heartbeat(self, beats: Sequence[Beat], lease_ttl: float) -> dict[int, LeaseStatus]:
        """Extend held leases."""
        if not beats:
            return {}
        return await self._op(finish.heartbeat, list(beats), lease_ttl, inline=True)

    async def finish(self, outcomes: Sequence[Outcome]) -> list[bool]:
        """Apply fenced outcomes."""
        return await self._op(finish.finish, list(outcomes), inline=True) if outcomes else []

    async def finish_and_claim(
        self, outcomes: Sequence[Outcome], request: ClaimRequest, chooser: Chooser | None = None
    ) -> tuple[list[bool], list[JobRecord]]:
        """Apply fenced outcomes and lease pending jobs, in one transaction."""
        return await self._op(
            finish_then_claim,
            list(outcomes),
            attrs.evolve(request, housekeep=False),
            chooser,
            None,
            inline=True,
        )

    async def cancel(self, job_id: int, reason: str = "cancelled") -> JobState:
        """Cancel a job tree."""
        return await self._op(control.cancel, job_id, reason)

    async def pause(self, job_id: int) -> int:
        """Pause a job tree."""
        return await self._op(without_now(control.pause), job_id)

    async def resume(self, job_id: int) -> int:
        """Resume a job tree."""
        return await self._op(control.resume, job_id)

    async def retry(self, job_id: int) -> None:
        """Retry an ended job."""
        await self._op(control.retry, job_id, retry_commit=False)

    async def get(self, job_id: int) -> JobRecord | None:
        """One job."""
        return await self._op(without_now(query.get), job_id, inline=True, write=False)

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

        def op(tx: Tx, now: float) -> list[JobRecord]:
            return query.list_jobs(
                tx,
                states=states,
                domain=domain,
                type=type,
                parent_id=parent_id,
                limit=limit,
                offset=offset,
                newest_first=newest_first,
            )

        return await self._op(op, write=False)

    async def counts(self) -> dict[tuple[str, str, JobState], int]:
        """Counts per (domain, type, state)."""
        return await self._op(without_now(query.counts), write=False)

    async def find_jobs(self, query: JobQuery) -> JobPage:
        """A keyset page of jobs matching `query`, newest first."""
        return await self._op(without_now(browse.find_jobs), query, write=False)

    async def activity(self, since: float) -> Activity:
        """Jobs ended since `since`, the latest id."""
        return await self._op(browse.activity, since, write=False)

    async def prepare_browsing(self) -> None:
        """Create the browsing indexes if missing (`wireframe.store.sql.schema.BROWSE_INDEXES`)."""
        await self._op(without_now(browse.prepare))

    async def active_counts(self) -> dict[tuple[str, JobState], int]:
        """Active jobs per (domain, state)."""
        return await self._op(without_now(browse.active_counts), write=False)

    async def oldest_pending(self) -> dict[str, float]:
        """Per domain, the longest wait of a ready job (seconds)."""
        return await self._op(query.oldest_pending, write=False)

    async def attempts(self, job_id: int) -> list[AttemptRecord]:
        """Attempts of a job."""
        return await self._op(without_now(attempts.attempts), job_id, write=False)

    async def key_running(self, keys: Sequence[str]) -> dict[str, int]:
        """How many jobs of each concurrency key run."""
        return await self._op(without_now(keys_sql.running_counts), list(keys), write=False)

    async def key_stats(self) -> list[KeyStats]:
        """Per (domain, type): jobs held by a key cap, the most jobs one key runs."""
        rows = await self._op(without_now(keys_sql.key_stats), write=False)
        return [KeyStats(*row) for row in rows]

    async def age(self, older_than: float, step: int, cap: int) -> int:
        """Boost long-waiting pending jobs."""
        return await self._op(claim_sql.age, older_than, step, cap)

    async def rate_limits(self) -> list[RateState]:
        """Every rate limit claims applied, with its tokens and held jobs now."""
        return await self._op(rate_sql.rate_states, write=False)

    async def next_due_at(self) -> float | None:
        """Earliest due time of scheduled or suspended jobs."""
        return await self._op(without_now(claim_sql.next_due_at), inline=True, write=False)

    async def top_pending_priority(self, domains: Sequence[str], tags: Sequence[str]) -> int | None:
        """Highest pending base priority."""
        return await self._op(
            without_now(claim_sql.top_pending_priority), domains, tags, write=False
        )

    async def prune(
        self,
        finished_before: float,
        *,
        states: Sequence[JobState] = (),
        domain: str | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete (or with `dry_run` count) old ended jobs."""
        values = tuple(JobState(s).value for s in states)
        return await self._op(
            without_now(control.prune),
            finished_before,
            values,
            domain,
            dry_run,
            write=not dry_run,
        )

    # -- schedules --------------------------------------------------------------------------

    async def due_schedules(self, domains: Sequence[str]) -> list[ScheduleRecord]:
        """Due schedules."""
        return await self._op(schedules.due, tuple(domains), write=False) if domains else []

    async def fire_schedule(
        self, schedule_id: int, expected_run_at: float, following_run_at: float | None
    ) -> Fired | None:
        """Fire a due occurrence once."""
        return await self._op(
            schedules.fire, schedule_id, expected_run_at, following_run_at, retry_commit=False
        )

    async def schedules(self) -> list[ScheduleRecord]:
        """Every schedule."""
        return await self._op(without_now(schedules.list_all), write=False)

    async def get_schedule(self, schedule_id: int) -> ScheduleRecord | None:
        """One schedule."""
        return await self._op(without_now(schedules.get), schedule_id, write=False)

    async def set_schedule_state(
        self, schedule_id: int, state: str, next_run_at: float | None = None
    ) -> ScheduleRecord:
        """Pause, resume or cancel a schedule."""
        return await self._op(schedules.set_state, schedule_id, state, next_run_at)

    # -- durable jobs -----------------------------------------------------------------------

    async def checkpoints(self, job_id: int) -> list[Checkpoint]:
        """Checkpoints of a job."""
        return await self._op(without_now(durable.checkpoints), job_id, inline=True, write=False)

    async def put_checkpoint(
        self, lease: Lease, seq: int, name: str, kind: str, value: str | None, lease_ttl: float
    ) -> LeaseStatus:
        """Record a checkpoint, fenced on the lease."""
        return await self._op(
            durable.put_checkpoint, lease, seq, name, kind, value, lease_ttl, inline=True
        )

    async def spawn_child(
        self, lease: Lease, seq: int, name: str, job: NewJob, lease_ttl: float
    ) -> int | LeaseStatus:
        """Submit a child with its spawn checkpoint, fenced on the lease."""
        return await self._op(
            durable.spawn_child, lease, seq, name, job, lease_ttl, inline=True, retry_commit=False
        )

    async def emit_event(self, name: str, payload: str | None) -> bool:
        """Set an event latch."""
        return await self._op(durable.emit_event, name, payload, inline=True)

    async def emit_from_job(
        self, lease: Lease, seq: int, name: str, event: str, payload: str | None, lease_ttl: float
    ) -> bool | LeaseStatus:
        """A running job's emit and its checkpoint, fenced on the lease."""
        return await self._op(
            durable.emit_from_job,
            lease,
            seq,
            name,
            event,
            payload,
            lease_ttl,
            inline=True,
            retry_commit=False,
        )

    async def get_event(self, name: str) -> EventRecord | None:
        """An emitted event."""
        return await self._op(without_now(durable.get_event), name, inline=True, write=False)

    # -- workers ----------------------------------------------------------------------------

    async def put_worker(self, worker: WorkerInfo, *, starting: bool = False) -> None:
        """Record or refresh a live worker."""
        await self._op(workers.put, worker, starting, inline=True)

    async def remove_worker(self, worker_id: str) -> None:
        """Forget a worker that stopped."""
        await self._op(without_now(workers.remove), worker_id, inline=True)

    async def workers(self) -> list[WorkerRecord]:
        """Every recorded worker."""
        return await self._op(workers.list_all, write=False)

    # -- job types --------------------------------------------------------------------------

    async def record_job_types(self, job_types: Sequence[NewJobType]) -> None:
        """Record job types (each replaces its type's record)."""
        if job_types:
            await self._op(job_types_sql.record, list(job_types))

    async def job_types(self) -> list[JobTypeRecord]:
        """Every recorded job type."""
        return await self._op(without_now(job_types_sql.list_all), write=False)

    # -- flow pauses ------------------------------------------------------------------------

    async def set_paused(self, kind: FlowKind, name: str, paused: bool) -> bool:
        """Pause or resume a domain or job type; True if that changed anything."""
        return await self._op(flows.set_paused, kind, name, paused, inline=True)

    async def paused(self) -> list[PausedFlow]:
        """Every paused domain and job type."""
        return await self._op(without_now(flows.paused), inline=True, write=False)


def without_now(fn: Callable[..., T]) -> Callable[..., T]:
    """Adapt an operation that does not need the clock to the (tx, now, ...) calling form."""

    def op(tx: Tx, now: float, *args: Any) -> T:
        return fn(tx, *args)

    op.needs_now = False  # type: ignore[attr-defined]
    return op
