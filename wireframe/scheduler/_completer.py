"""The completer of a worker: writes the outcomes its runners queue, in batches, then publishes
what the store did with each (the store's word, not the worker's guess: a completion may have
left its job waiting for children, a retry may have been refused, a failure may have come from
a child)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio

from wireframe.scheduler._hub import Hub, transition_event
from wireframe.scheduler._running import Interrupt, Running
from wireframe.scheduler.events import (
    Event,
    JobCompleted,
    JobFailedEvent,
    JobPreempted,
    JobRetrying,
    JobSuspended,
    JobWaiting,
)
from wireframe.store import (
    FAR_FUTURE,
    Beat,
    Chooser,
    ClaimRequest,
    Complete,
    Fail,
    JobRecord,
    JobState,
    Outcome,
    Release,
    Transition,
)

log = logging.getLogger("wireframe.scheduler")

Asked = tuple[ClaimRequest, Chooser | None]
Done = list[tuple[Running, Outcome]]


class Completer:
    """Writes queued outcomes in batches; a batch may carry a claim for the slots it frees.

    Contract: every outcome `add`ed is written once, in order of arrival, by `run` or by the
    last `flush` (a batch whose write was cancelled is queued again at the front); until it is
    written, `unwritten()` lists its lease so heartbeats keep it. Once written, the events of
    each outcome are published from where the store put its job (`Hub.take_own`), before the
    store's other moves of that write. Backward signals, given at
    construction: `lend()` asks the producer for a claim to make with the write (None: do not
    claim), `written(asked, jobs)` tells it a write ended (with the jobs claimed, if any);
    `queued()` counts jobs still queued for the runners; `check_requests()` renews leases
    after failures, which may have cascaded to jobs running here; `housekeep()` runs
    housekeeping if due after a write that claimed.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        batch_size: int,
        queued: Callable[[], int],
        lend: Callable[[], Asked | None],
        written: Callable[[Asked | None, list[JobRecord]], None],
        running: Callable[[], bool],
        check_requests: Callable[[], Awaitable[None]],
        housekeep: Callable[[], Awaitable[None]],
    ) -> None:
        self.hub = hub
        self.batch_size = batch_size
        self._queued = queued
        self._lend = lend
        self._written = written
        self._running = running
        self._check_requests = check_requests
        self._housekeep = housekeep
        self.outcomes: Done = []
        self.in_flight: Done = []
        self._ready = anyio.Event()
        self._closing = False

    def add(self, running: Running, outcome: Outcome) -> None:
        """Queue one outcome for the next write."""
        self.outcomes.append((running, outcome))
        self._ready.set()

    @property
    def backlog(self) -> int:
        """Outcomes queued or being written."""
        return len(self.outcomes) + len(self.in_flight)

    def unwritten(self) -> list[Beat]:
        """Heartbeats for the leases of outcomes not yet written."""
        return [Beat(o.lease) for _, o in self.in_flight + self.outcomes]

    async def run(self) -> None:
        """Write outcomes as they come, until `close()` and all are written (or cancelled)."""
        while not (self._closing and not self.outcomes):
            await self._ready.wait()
            self._ready = anyio.Event()
            await self._gather()
            await self.flush()

    def close(self) -> None:
        """Return from `run` once every outcome queued is written."""
        self._closing = True
        self._ready.set()

    async def _gather(self) -> None:
        """Let the runners take the jobs handed to them before writing, up to a batch.

        The first outcome wakes the completer while quick jobs of the same claim are still
        queued; they finish in the runners' next turns, and one transaction then carries what
        would have taken several. Stops as soon as the queue stops shrinking (every runner
        busy with a slow job).
        """
        queued = self._queued()
        while queued and len(self.outcomes) < self.batch_size:
            await anyio.lowlevel.checkpoint()
            left = self._queued()
            if left >= queued:
                return
            queued = left

    async def flush(self) -> None:
        """Write every queued outcome (a batch at a time, each with a claim if lent one)."""
        while self.outcomes:
            batch, self.outcomes = self.outcomes, []
            self.in_flight = batch
            asked = None if self._closing else self._lend()
            with self.hub.holding_transitions():
                try:
                    applied = await self._write(batch, asked)
                except BaseException:
                    self.outcomes[:0] = batch  # not known to be written: write it again later
                    raise
                finally:
                    self.in_flight = []
                self._after(batch, applied, self.hub.take_own(r.record.id for r, _ in batch))
            if self._running() and any(not isinstance(o, Complete) for _, o in batch):
                await self._check_requests()  # a failure may have cascaded to jobs here
            if asked is not None:
                await self._housekeep()

    def committed(self, running: Running, outcome: Outcome, deliver: Callable[[], None]) -> None:
        """Publish an outcome written elsewhere (committed in the handler's transaction):
        `deliver` tells the store's observers what that commit moved; its events follow, once,
        as if this completer had written it."""
        with self.hub.holding_transitions():
            deliver()
            self._after([(running, outcome)], [True], self.hub.take_own([running.record.id]))

    async def _write(self, batch: Done, asked: Asked | None) -> list[bool]:
        store = self.hub.store
        outcomes = [o for _, o in batch]
        jobs: list[JobRecord] = []
        try:
            if asked is None:
                return await store.finish(outcomes)
            applied, jobs = await store.finish_and_claim(outcomes, *asked)
            return applied
        finally:
            self._written(asked, jobs)

    def _after(self, batch: Done, applied: list[bool], moved: dict[int, Transition]) -> None:
        """Publish and log what the write did (`moved`: where the store put the jobs of the
        outcomes it did not simply complete), and wake `result()` waiters."""
        publish = bool(self.hub.events.subscriber_count)
        if publish or moved or not all(applied) or log.isEnabledFor(logging.DEBUG):
            for (running, outcome), ok in zip(batch, applied, strict=True):
                record = running.record
                if not ok:
                    log.warning(
                        "job %s: outcome rejected, the lease was no longer held",
                        record.id,
                        extra={"job_id": record.id},
                    )
                    continue
                events = _events(running, outcome, moved.get(record.id))
                if publish:
                    for event in events:
                        self.hub.publish(event)
                _log_end(running, events)
        self.hub.ended()


def _events(running: Running, outcome: Outcome, moved: Transition | None) -> list[Event]:
    """The events of an outcome the store applied, `moved` saying where it put the job (None:
    it completed the job at once)."""
    record = running.record
    state = JobState.COMPLETED if moved is None else moved.state
    if state is JobState.COMPLETED:
        duration = time.time() - running.started
        return [JobCompleted(job_id=record.id, job_type=record.type, duration=duration)]
    assert moved is not None
    if state.terminal or state is JobState.WAITING:
        event = transition_event(moved)
        return [] if event is None else [event]
    if isinstance(outcome, Complete):  # its finalize runs next
        return [JobWaiting(job_id=record.id, job_type=record.type, children=0)]
    if isinstance(outcome, Fail):
        return _retried(record, outcome)
    assert isinstance(outcome, Release)
    return _released(running, outcome, state)


def _retried(record: JobRecord, outcome: Fail) -> list[Event]:
    """A failed attempt the store scheduled to run again."""
    delay = max(0.0, (outcome.retry_at or 0.0) - time.time())
    return [
        JobFailedEvent(
            job_id=record.id,
            job_type=record.type,
            error=outcome.error,
            attempt=record.attempt,
            will_retry=True,
        ),
        JobRetrying(job_id=record.id, job_type=record.type, attempt=record.attempt, delay=delay),
    ]


def _released(running: Running, outcome: Release, state: JobState) -> list[Event]:
    """A job given back that has not ended: suspended, preempted, paused or handed back."""
    record = running.record
    if state is JobState.SUSPENDED:
        until = None if outcome.run_at is None or outcome.run_at >= FAR_FUTURE else outcome.run_at
        return [
            JobSuspended(job_id=record.id, job_type=record.type, until=until, reason=outcome.reason)
        ]
    if running.stop_reason is Interrupt.PREEMPTED and state is JobState.PENDING:
        return [JobPreempted(job_id=record.id, job_type=record.type)]
    return []


def _log_end(running: Running, events: list[Event]) -> None:
    """Log a completion, or a wait for children, at DEBUG (failures are logged as they happen)."""
    if not events or not log.isEnabledFor(logging.DEBUG):
        return
    record, event = running.record, events[0]
    if isinstance(event, JobCompleted):
        log.debug(
            "job %s (%s) completed in %.3f s",
            record.id,
            record.type,
            event.duration,
            extra={"job_id": record.id},
        )
    elif isinstance(event, JobWaiting):
        log.debug(
            "job %s (%s): handler returned; waiting for %s",
            record.id,
            record.type,
            f"{event.children} children" if event.children else "its finalize",
            extra={"job_id": record.id},
        )
