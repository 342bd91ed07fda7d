"""What a scheduler and its worker share: the store, the event bus, the order in which the
store's own moves are published, and the wake-ups of `result()` waiters."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import anyio

from wireframe.scheduler.events import (
    Event,
    EventBus,
    JobBlocked,
    JobCancelled,
    JobCompleted,
    JobDependencyFailed,
    JobExpired,
    JobFailedEvent,
    JobUnblocked,
    JobWaiting,
)
from wireframe.store import JobState, Store, Transition


class Hub:
    """The store and the event bus of one scheduler (or standalone worker), opened once.

    Contract: `open` is idempotent and safe to call concurrently; the store's own moves
    (blocked, unblocked, and every end it made as a consequence) are published after the
    events of the operation that caused them (`holding_transitions`); the moves `finish`
    reports of its own outcomes are the writer's to publish (`take_own`), and are published
    here only if nobody took them; `ended()` wakes everyone waiting for jobs to end
    (`next_end`).
    """

    def __init__(self, store: Store, event_buffer: int = 1024) -> None:
        self.store = store
        self.events = EventBus(buffer=event_buffer)
        self.event_buffer = event_buffer
        self._held: ContextVar[list[Transition] | None] = ContextVar(
            f"wireframe_held_transitions_{id(self)}", default=None
        )
        """The moves held by the task running `holding_transitions` (each task its own)."""
        self._ended = anyio.Event()
        self._open_lock: anyio.Lock | None = None
        self.opened = False
        self.types_recorded = False
        """Whether the job types were recorded since the store was opened (`Front.open`)."""
        self.closed = False
        """True once `close()` was called, until the next `open()`."""

    # -- the store --------------------------------------------------------------------------

    async def open(self) -> None:
        """Open the store (idempotent) and start publishing its own moves."""
        if self.opened:
            return
        if self._open_lock is None:
            self._open_lock = anyio.Lock()
        async with self._open_lock:
            if not self.opened:
                await self.store.open()
                self.store.observe(self._observed)
                self.opened, self.closed = True, False

    async def close(self) -> None:
        """Close the store."""
        if self.opened:
            self.opened, self.closed = False, True
            self.ended()  # waiters on `next_end()` see the close at once
            self.types_recorded = False
            self.store.unobserve(self._observed)
            await self.store.close()

    # -- events -----------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Publish one event to every subscriber."""
        self.events.publish(event)

    def _observed(self, transitions: Sequence[Transition]) -> None:
        held = self._held.get()
        if held is not None:
            held.extend(transitions)
        elif self.events.subscriber_count:
            self._publish_transitions(transitions)

    @contextmanager
    def holding_transitions(self) -> Iterator[None]:
        """Publish the store's own moves that reach this task only after the events the caller
        publishes inside (other tasks' moves are published as they come).

        So a submit says `submitted` before `blocked`, and a completion `completed` before
        the `unblocked` of its dependents. Nothing inside may await anything but the store:
        what other tasks publish meanwhile would come before the moves held here.
        """
        if self._held.get() is not None:  # nested: the outer block publishes
            yield
            return
        held: list[Transition] = []
        token = self._held.set(held)
        try:
            yield
        finally:
            self._held.reset(token)
            if held and self.events.subscriber_count:
                self._publish_transitions(held)

    def take_own(self, job_ids: Iterable[int]) -> dict[int, Transition]:
        """Take, from the moves held, where `finish` put the jobs `job_ids` of its outcomes
        (by job id), so that their writer publishes them (call inside `holding_transitions`)."""
        held = self._held.get()
        if not held:
            return {}
        wanted = set(job_ids)
        own: dict[int, Transition] = {}
        rest: list[Transition] = []
        for t in held:
            if t.own and t.job_id in wanted and t.job_id not in own:
                own[t.job_id] = t
            else:
                rest.append(t)
        if own:
            held[:] = rest
        return own

    def _publish_transitions(self, transitions: Sequence[Transition]) -> None:
        publish = self.events.publish
        for t in transitions:
            event = transition_event(t)
            if event is not None:
                publish(event)

    # -- result waiters ---------------------------------------------------------------------

    def ended(self) -> None:
        """Jobs may have ended: set the event `next_end()` handed out, and start a new one."""
        ended, self._ended = self._ended, anyio.Event()
        ended.set()

    def next_end(self) -> anyio.Event:
        """The event set when jobs next end; take it before reading the store, then wait."""
        return self._ended


def transition_event(t: Transition) -> Event | None:
    """The event of a move the store reported (None: a move no event stands for).

    A move `finish` made of its own outcome (`own`) gets one only if it ended the job or left
    it waiting: the rest (a retry, a release) are told by the outcome's writer.
    """
    state, job_id, job_type = t.state, t.job_id, t.job_type
    if state is JobState.BLOCKED:
        return JobBlocked(job_id=job_id, job_type=job_type, depends_on=t.depends_on)
    if state is JobState.PENDING or state is JobState.SCHEDULED:
        return None if t.own else JobUnblocked(job_id=job_id, job_type=job_type)
    if state is JobState.WAITING:
        return JobWaiting(job_id=job_id, job_type=job_type, children=t.children)
    if state is JobState.COMPLETED:
        return JobCompleted(job_id=job_id, job_type=job_type, duration=t.duration or 0.0)
    if state is JobState.FAILED:
        error = t.error or "failed"
        return JobFailedEvent(
            job_id=job_id, job_type=job_type, error=error, attempt=t.attempt, will_retry=False
        )
    return _other_end(t)


def _other_end(t: Transition) -> Event | None:
    """The event of a move to cancelled, expired or dependency_failed (None for any other)."""
    state, job_id, job_type = t.state, t.job_id, t.job_type
    if state is JobState.CANCELLED:
        return JobCancelled(job_id=job_id, job_type=job_type)
    if state is JobState.EXPIRED:
        return JobExpired(job_id=job_id, job_type=job_type)
    if state is JobState.DEPENDENCY_FAILED:
        dependency = t.depends_on[0] if t.depends_on else 0
        error = t.error or f"dependency job {dependency} did not complete"
        return JobDependencyFailed(
            job_id=job_id, job_type=job_type, dependency=dependency, error=error
        )
    return None
