"""The PostgreSQL store's operations in worker threads: stopping them, and what they report.

`Call` is one operation: its thread retries while the server is unreachable, and stops when its
caller is cancelled or the store is closed. `Outage` logs an outage once per store, however many
operations retry through it; `Conflicts` counts the transactions retried after a deadlock or a
serialization failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar, cast

import anyio
import anyio.to_thread

from wireframe.store.errors import StoreError

T = TypeVar("T")
log = logging.getLogger("wireframe.store")

CANCEL_WAIT = 0.4
"""How long a cancelled operation waits for its thread to stop before it leaves it behind."""

CANCELLED = "its caller was cancelled"
CLOSED = "the store was closed"


class Call:
    """One store operation running in a worker thread, and how to stop it retrying."""

    __slots__ = ("done", "error", "name", "reason", "result", "started", "stop")

    def __init__(self, name: str) -> None:
        self.name = name
        self.stop = threading.Event()
        self.reason = ""
        self.started = False
        self.done = threading.Event()
        self.result: Any = None
        self.error: BaseException | None = None

    def end(self, reason: str) -> None:
        """Stop retrying at the next chance (`reason`: CANCELLED or CLOSED)."""
        if not self.stop.is_set():
            self.reason = reason
            self.stop.set()

    def check(self, where: str) -> None:
        """Raise StoreError if the operation was told to stop."""
        if self.stop.is_set():
            raise StoreError(f"{where}: {self.name} stopped: {self.reason}")

    def pause(self, seconds: float, where: str) -> None:
        """Wait `seconds` before a retry; raise StoreError at once if told to stop meanwhile."""
        if self.stop.wait(seconds):
            self.check(where)

    def run(self, fn: Callable[[], Any]) -> None:
        """Run `fn` (in the worker thread), keeping its result or exception."""
        self.started = True
        try:
            self.result = fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def outcome(self) -> Any:
        """What `fn` returned, or raise what it raised."""
        if self.error is not None:
            raise self.error
        return self.result


async def run_in_thread(call: Call, fn: Callable[[], T], limiter: anyio.CapacityLimiter) -> T:
    """`fn()` in a worker thread; a cancelled caller gets its cancellation back at once.

    The thread is told to stop retrying and given `CANCEL_WAIT` seconds to finish: an attempt
    under way on a reachable server usually ends by then (its result is returned, and the
    cancellation comes at the caller's next checkpoint, as for an operation that is not
    cancellable); one waiting for an unreachable server stops at once; one stuck on a dead
    connection is left behind, to end by itself without retrying.
    """
    try:
        await anyio.to_thread.run_sync(call.run, fn, abandon_on_cancel=True, limiter=limiter)
    except anyio.get_cancelled_exc_class():
        call.end(CANCELLED)
        if not call.started:  # cancelled before its thread began; if it begins, it stops at once
            raise
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(call.done.wait, CANCEL_WAIT, abandon_on_cancel=True)
        if not call.done.is_set() or call.error is not None:
            raise
    return cast(T, call.outcome())


class Outage:
    """One WARNING when operations first find the server unreachable, one INFO when it is back."""

    def __init__(self, where: str) -> None:
        self._where = where
        self._since: float | None = None
        self._lock = threading.Lock()

    def failed(self, reason: str, retry_for: float) -> None:
        """An operation could not reach the server (it will retry for up to `retry_for` s)."""
        with self._lock:
            first = self._since is None
            if first:
                self._since = time.monotonic()
        if first:
            log.warning(
                "%s: PostgreSQL unreachable (%s); operations retry for up to %g s",
                self._where,
                reason,
                retry_for,
            )

    def passed(self) -> None:
        """An operation got through."""
        if self._since is None:
            return
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.info(
                "%s: PostgreSQL reachable again after %.1f s",
                self._where,
                time.monotonic() - since,
            )


class Conflicts:
    """Transactions retried after a deadlock, serialization failure or key race, by sqlstate."""

    DEADLOCK = "40P01"

    def __init__(self, where: str) -> None:
        self._where = where
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def note(self, sqlstate: str, operation: str) -> None:
        """Count one retry of `operation`; log deadlocks."""
        with self._lock:
            self._counts[sqlstate] += 1
        if sqlstate == self.DEADLOCK:
            log.warning("%s: deadlock in %s; retrying it", self._where, operation)

    def counts(self) -> dict[str, int]:
        """Retries so far, by sqlstate."""
        with self._lock:
            return dict(self._counts)
