"""What a scheduler and its worker share: the store, the event bus, the order in which the
store's own moves are published, and the wake-ups of `result()` waiters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import anyio

from wireframe.scheduler.events import (
    Event,
    EventBus,
    JobBlocked,
    JobExpired,
    JobUnblocked,
)
from wireframe.store import JobState, Store, Transition


class Hub:
    """The store and the event bus of one scheduler (or standalone worker), opened once.

    Contract: `open` is idempotent and safe to call concurrently; the store's own moves
    (blocked, unblocked, expired) are published after the events of the operation that caused
    them (`holding_transitions`); `ended()` wakes everyone waiting for jobs to end (`next_end`).
    """

    def __init__(self, store: Store, event_buffer: int = 1024) -> None:
        self.store = store
        self.events = EventBus(buffer=event_buffer)
        self.event_buffer = event_buffer
        self._holding = 0
        self._held: list[Transition] = []
        self._ended = anyio.Event()
        self._open_lock: anyio.Lock | None = None
        self.opened = False
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
            self.store.unobserve(self._observed)
            await self.store.close()

    # -- events -----------------------------------------------------------------------------

    def publish(self, event: Event) -> None:
        """Publish one event to every subscriber."""
        self.events.publish(event)

    def _observed(self, transitions: Sequence[Transition]) -> None:
        if not self.events.subscriber_count:
            return
        if self._holding:
            self._held.extend(transitions)
        else:
            self._publish_transitions(transitions)

    @contextmanager
    def holding_transitions(self) -> Iterator[None]:
        """Publish the store's own moves only after the events the caller publishes inside.

        So a submit says `submitted` before `blocked`, and a completion `completed` before
        the `unblocked` of its dependents.
        """
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
            if not self._holding and self._held:
                held, self._held = self._held, []
                self._publish_transitions(held)

    def _publish_transitions(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            if t.state is JobState.BLOCKED:
                event: Event = JobBlocked(
                    job_id=t.job_id, job_type=t.job_type, depends_on=t.depends_on
                )
            elif t.state is JobState.EXPIRED:
                event = JobExpired(job_id=t.job_id, job_type=t.job_type)
            else:
                event = JobUnblocked(job_id=t.job_id, job_type=t.job_type)
            self.events.publish(event)

    # -- result waiters ---------------------------------------------------------------------

    def ended(self) -> None:
        """Jobs may have ended: set the event `next_end()` handed out, and start a new one."""
        ended, self._ended = self._ended, anyio.Event()
        ended.set()

    def next_end(self) -> anyio.Event:
        """The event set when jobs next end; take it before reading the store, then wait."""
        return self._ended
