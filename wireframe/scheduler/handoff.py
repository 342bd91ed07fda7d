"""A hand-off queue from the claim loop to the pool of runners: one wake-up per job."""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

import anyio

T = TypeVar("T")


class Handoff(Generic[T]):
    """Items put by one producer, taken by many consumers; each put wakes one idle consumer.

    Lighter than a memory object stream on the hot path: a consumer that finds an item takes it
    without waiting, and one that waits costs one event.
    """

    def __init__(self) -> None:
        self._items: deque[T] = deque()
        self._idle: deque[anyio.Event] = deque()
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T) -> None:
        """Queue `item` and wake one idle consumer; an error once closed."""
        if self._closed:
            raise anyio.ClosedResourceError
        self._items.append(item)
        self._wake_one()

    def get_nowait(self) -> T:
        """An item at once; `WouldBlock` if none, `EndOfStream` once closed and empty."""
        if self._items:
            return self._items.popleft()
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
                    self._wake_one()  # the wake-up meant for this consumer goes to another
                else:
                    self._idle.remove(event)
                raise

    def close(self) -> None:
        """No more items: waiting consumers get what is left, then `EndOfStream`."""
        self._closed = True
        while self._idle:
            self._idle.popleft().set()

    def _wake_one(self) -> None:
        if self._idle:
            self._idle.popleft().set()
