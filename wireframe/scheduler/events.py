"""Typed job lifecycle events and the ``EventBus`` that fans them out to subscribers.

A job's events follow its real history, as its store wrote it: ``JobSubmitted`` first, then
the moves it made (blocked, unblocked, started, waiting, retrying, ...), and exactly one
terminal event once it has ended: ``JobCompleted``, ``JobFailedEvent`` with
``will_retry=False``, ``JobCancelled``, ``JobExpired`` or ``JobDependencyFailed``. That holds
for the moves the store makes on its own too: a cascade (dependents cancelled or
dependency_failed, a tree cancelled, a parent failed by a child or completed by its last one),
a ttl that ran out, a job whose worker was lost too often. A parent whose handler returned
while children are active says ``JobWaiting(children=n)``, and its end comes when it really
ends. A job an operator retries goes on from its end with the events of its new run.

A recurring schedule's occurrence says ``JobSubmitted`` in the process whose worker fired it (an
occurrence queued behind the active run, ``overlap="queue"``, then says ``JobBlocked``). A firing
that the schedule's overlap policy skipped creates no job: it says ``ScheduleSkipped``.

Events are per process: an ``EventBus`` lives in one process, and an event is published in
the process whose operation made the move (the submit, the cancel, the worker that wrote the
outcome or ran the housekeeping that expired the job). Processes that share a store each see
the moves they made; none sees every job's every event. For the whole picture, query the store.

Publishing never blocks: every subscriber has a bounded buffer, and when a slow subscriber's
buffer is full its *oldest* event is dropped and counted. The subscriber then receives one
``EventsLagged(missed=n)`` before the events that are still buffered.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterable
from types import TracebackType
from typing import ClassVar, Self, TypeAlias

import anyio
import attrs

from wireframe.scheduler.errors import ConfigError

__all__ = [
    "Event",
    "EventBus",
    "EventsLagged",
    "JobBlocked",
    "JobCancelled",
    "JobCompleted",
    "JobDependencyFailed",
    "JobEvent",
    "JobExpired",
    "JobFailedEvent",
    "JobPreempted",
    "JobProgress",
    "JobRetrying",
    "JobStarted",
    "JobSubmitted",
    "JobSuspended",
    "JobUnblocked",
    "JobWaiting",
    "ScheduleSkipped",
    "Subscription",
]


@attrs.frozen
class JobEvent:
    """Fields every job event has: the job, its type and when it happened (UNIX time)."""

    kind: ClassVar[str] = "job"

    job_id: int
    job_type: str
    at: float = attrs.field(factory=time.time, kw_only=True)


@attrs.frozen
class JobSubmitted(JobEvent):
    """A job was accepted by ``submit``."""

    kind: ClassVar[str] = "submitted"


@attrs.frozen
class JobStarted(JobEvent):
    """A worker started attempt number ``attempt`` (1-based) of a job."""

    kind: ClassVar[str] = "started"

    attempt: int
    worker_id: str
    queued_for: float | None = None
    """Seconds it waited to start since it became ready to run (`JobRecord.ready_at`, read on
    the worker's clock), or None when unknown."""


@attrs.frozen
class JobProgress(JobEvent):
    """A running handler reported progress (``fraction`` in ``[0, 1]``)."""

    kind: ClassVar[str] = "progress"

    fraction: float
    message: str | None = None


@attrs.frozen
class JobCompleted(JobEvent):
    """A job completed; ``duration`` is the last attempt's run time in seconds."""

    kind: ClassVar[str] = "completed"

    duration: float


@attrs.frozen
class JobFailedEvent(JobEvent):
    """An attempt failed; ``will_retry`` says whether another attempt is scheduled."""

    kind: ClassVar[str] = "failed"

    error: str
    attempt: int
    will_retry: bool


@attrs.frozen
class JobRetrying(JobEvent):
    """A failed job will run again after ``delay`` seconds."""

    kind: ClassVar[str] = "retrying"

    attempt: int
    delay: float


@attrs.frozen
class JobCancelled(JobEvent):
    """A job was cancelled."""

    kind: ClassVar[str] = "cancelled"


@attrs.frozen
class JobExpired(JobEvent):
    """A job was not started before its ``ttl`` ran out."""

    kind: ClassVar[str] = "expired"


@attrs.frozen
class JobDependencyFailed(JobEvent):
    """A job ended ``dependency_failed``: its dependency ``dependency`` ended without completing,
    under ``on_dependency_failure="fail"``."""

    kind: ClassVar[str] = "dependency_failed"

    dependency: int
    error: str


@attrs.frozen
class JobPreempted(JobEvent):
    """A running job was preempted by a higher-priority one and went back to pending."""

    kind: ClassVar[str] = "preempted"


def _int_tuple(values: Iterable[int]) -> tuple[int, ...]:
    """Store a sequence of job ids as a tuple."""
    return tuple(values)


@attrs.frozen
class JobBlocked(JobEvent):
    """A job waits for the jobs in ``depends_on`` to complete."""

    kind: ClassVar[str] = "blocked"

    depends_on: tuple[int, ...] = attrs.field(converter=_int_tuple)


@attrs.frozen
class JobUnblocked(JobEvent):
    """A blocked job's dependencies have all ended; it can run."""

    kind: ClassVar[str] = "unblocked"


@attrs.frozen
class JobWaiting(JobEvent):
    """A job's handler returned but it has not ended: it waits for ``children`` active
    children (then ends, or runs its finalize), or, with ``children=0``, for its finalize."""

    kind: ClassVar[str] = "waiting"

    children: int


@attrs.frozen
class JobSuspended(JobEvent):
    """A durable job is suspended until ``until`` (UNIX time) or an event (``reason``)."""

    kind: ClassVar[str] = "suspended"

    until: float | None
    reason: str


@attrs.frozen
class ScheduleSkipped:
    """A recurring schedule fired while its run ``active_job_id`` had not ended, and its overlap
    policy skipped the firing due at ``run_at`` (no job was created; the schedule counts it in
    ``ScheduleRecord.skipped`` and fires next at its following time)."""

    kind: ClassVar[str] = "schedule_skipped"

    schedule_id: int
    job_type: str
    run_at: float
    active_job_id: int | None
    at: float = attrs.field(factory=time.time, kw_only=True)


@attrs.frozen
class EventsLagged:
    """This subscriber was too slow: ``missed`` events were dropped from its buffer."""

    kind: ClassVar[str] = "lagged"

    missed: int


Event: TypeAlias = (
    JobSubmitted
    | JobStarted
    | JobProgress
    | JobCompleted
    | JobFailedEvent
    | JobRetrying
    | JobCancelled
    | JobExpired
    | JobDependencyFailed
    | JobPreempted
    | JobBlocked
    | JobUnblocked
    | JobWaiting
    | JobSuspended
    | ScheduleSkipped
    | EventsLagged
)
"""Any event a subscription yields."""


def _check_buffer(value: object, *, where: str) -> int:
    """Return ``value`` if it is an int >= 1, else raise ``ConfigError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: buffer={value!r} must be an int >= 1")
    return value


class Subscription:
    """One subscriber's bounded view of an ``EventBus``.

    Use it as ``async with bus.subscribe() as events: async for event in events: ...``.
    Leaving the ``async with`` block (or calling ``close()``) unsubscribes. Iteration ends
    when the subscription or the bus is closed, after the events already buffered.
    """

    __slots__ = ("_bus", "_closed", "_missed", "_queue", "_waiter", "buffer")

    def __init__(self, bus: EventBus, buffer: int) -> None:
        self._bus = bus
        self.buffer = buffer
        self._queue: collections.deque[Event] = collections.deque(maxlen=buffer)
        self._missed = 0
        self._waiter: anyio.Event | None = None
        self._closed = False

    def _push(self, event: Event) -> None:
        """Buffer ``event`` (dropping and counting the oldest if full); wake the receiver."""
        queue = self._queue
        if len(queue) == self.buffer:
            self._missed += 1  # the deque drops its oldest item on append
        queue.append(event)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    def _end(self) -> None:
        """Mark closed and wake a waiting receiver so its iteration can end."""
        self._closed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set()

    @property
    def pending(self) -> int:
        """Number of events buffered and not yet received."""
        return len(self._queue)

    @property
    def closed(self) -> bool:
        """Whether this subscription no longer receives new events."""
        return self._closed

    def receive_nowait(self) -> Event | None:
        """The next buffered event (an ``EventsLagged`` first, if any were dropped), or None."""
        if self._missed:
            missed, self._missed = self._missed, 0
            return EventsLagged(missed=missed)
        if self._queue:
            return self._queue.popleft()
        return None

    async def receive(self) -> Event:
        """Wait for the next event; raises ``anyio.EndOfStream`` once closed and drained."""
        while True:
            event = self.receive_nowait()
            if event is not None:
                return event
            if self._closed:
                raise anyio.EndOfStream
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = anyio.Event()
            await waiter.wait()

    def close(self) -> None:
        """Unsubscribe: no new events arrive; buffered ones can still be received."""
        if not self._closed:
            self._bus._remove(self)
            self._end()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class EventBus:
    """Fan-out of lifecycle events to any number of subscribers, never blocking the publisher.

    ``publish`` is synchronous and O(1) per subscriber. It must be called from the event
    loop's thread (it wakes receivers through ``anyio.Event``); from another thread, use
    ``anyio.from_thread.run_sync(bus.publish, event)``. ``buffer`` is the default size of
    each subscription's buffer.
    """

    def __init__(self, buffer: int = 1024) -> None:
        self.buffer = _check_buffer(buffer, where="EventBus")
        self._subscribers: dict[Subscription, None] = {}
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        """Number of live subscriptions."""
        return len(self._subscribers)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
        return self._closed

    def subscribe(self, buffer: int | None = None) -> Subscription:
        """A new subscription receiving every event published from now on.

        ``buffer`` (default: the bus's) bounds how many unreceived events it keeps.
        Subscribing to a closed bus gives a subscription whose iteration ends at once.
        """
        size = self.buffer if buffer is None else _check_buffer(buffer, where="subscribe")
        subscription = Subscription(self, size)
        if self._closed:
            subscription._end()
        else:
            self._subscribers[subscription] = None
        return subscription

    def publish(self, event: Event) -> None:
        """Deliver ``event`` to every subscriber without waiting (event loop thread only)."""
        for subscription in self._subscribers:
            subscription._push(event)

    def close(self) -> None:
        """End every subscription (after its buffered events); later publishes are dropped."""
        self._closed = True
        subscribers, self._subscribers = self._subscribers, {}
        for subscription in subscribers:
            subscription._end()

    def _remove(self, subscription: Subscription) -> None:
        """Forget a subscription (called by ``Subscription.close``)."""
        self._subscribers.pop(subscription, None)
