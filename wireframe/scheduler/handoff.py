"""A hand-off queue from the claim loop to the pool of runners: wake-ups passed along a chain."""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items put by one producer, taken by many consumers; no item waits while one is idle.

    At most one idle consumer is being woken at a time: the consumer that takes an item wakes
    the next one if items remain. A burst of short jobs is then run by the few consumers that
    are awake (taking items without waiting), instead of waking one consumer per item only for
    most of them to find the queue empty; a burst of long jobs still spreads over every idle
    consumer, one event-loop turn apart.
    """

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._idle: deque[anyio.Event] = deque()
        self._closed = False
        self._waking = False
        """An idle consumer has been woken and has not run yet."""

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    def put(self, item: T) -> None:
        """Queue `item` and wake one idle consumer; an error once closed."""
        if self._closed:
            raise anyio.ClosedResourceError
        self._items.append(item)
        if not self._waking:
            self._wake_one()

    def get_nowait(self) -> T:
        """An item at once; `WouldBlock` if none, `EndOfStream` once closed and empty."""
        if self._items:
            item = self._items.popleft()
            if self._items and not self._waking:
                self._wake_one()  # pass the rest along to the next idle consumer
            return item
        if self._closed:
            raise anyio.EndOfStream
        raise anyio.WouldBlock

    async def get(self) -> T:
        """The next item, waiting for one; `anyio.EndOfStream` once closed and empty."""
        while True:
            try:
                return self.get_nowait()
            except anyio.WouldBlock:
                pass
            event = anyio.Event()
            self._idle.append(event)
            try:
                await event.wait()
            except BaseException:
                if event.is_set():
                    self._waking = False
                    if self._items or self._closed:
                        self._wake_one()  # the wake-up meant for this consumer goes to another
                else:
                    self._idle.remove(event)
                raise
            self._waking = False

    def close(self) -> None:
        """No more items: waiting consumers get what is left, then `EndOfStream`."""
        self._closed = True
        while self._idle:
            self._idle.popleft().set()

    def _wake_one(self) -> None:
        if self._idle:
            self._waking = True
            self._idle.popleft().set()
