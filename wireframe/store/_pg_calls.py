"""The PostgreSQL store's operations in worker threads: stopping them, and what they report.

`Call` is one operation: its thread retries while the server is unreachable, and stops when its
caller is cancelled or the store is closed. `Outage` logs an outage once per store, however many
operations (and the listening connection) retry through it; `reason` and `refusal` put a
connection error in one line and tell a refusal (a wrong password, an unknown role or database)
from an outage; `Conflicts` counts the transactions retried after a deadlock or a serialization
failure.
"""

from __future__ import annotations

import logging
import math
import re
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

_running = threading.local()


def in_call() -> bool:
    """Whether this thread is running a store operation (a `Call`)."""
    return getattr(_running, "call", False)


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
        _running.call = True
        try:
            self.result = fn()
        except BaseException as exc:
            self.error = exc
        finally:
            _running.call = False
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
    """One WARNING when the store loses its server, one INFO when it has it back.

    Every operation, and the listening connection, reports how each of its attempts ended,
    with the time the attempt began. However many connections fail at once, the first failure
    starts the outage (the WARNING) and the first success ends it (the INFO, with how long it
    lasted); attempts begun before the server was last seen back, or before the outage was
    noticed, report nothing new and are ignored, so stragglers of one outage neither start a
    second one nor end it early.
    """

    def __init__(self, where: str, retry_for: float) -> None:
        self._where = where
        self._retry_for = retry_for
        self._since: float | None = None
        self._back = -math.inf
        self._lock = threading.Lock()

    @property
    def since(self) -> float | None:
        """When the current outage was noticed (`time.monotonic()`), or None."""
        return self._since

    def failed(self, reason: str, began: float) -> None:
        """An attempt begun at `began` (`time.monotonic()`) could not reach the server."""
        with self._lock:
            first = self._since is None and began >= self._back
            if first:
                self._since = time.monotonic()
        if first:
            log.warning(
                "lost PostgreSQL at %s (%s); retrying for up to %g s",
                self._where,
                reason,
                self._retry_for,
            )

    def passed(self, began: float) -> None:
        """An attempt begun at `began` got through."""
        if self._since is None:
            return
        with self._lock:
            since = self._since
            if since is None or began < since:
                return
            self._since = None
            self._back = time.monotonic()
        log.info("reconnected to PostgreSQL at %s after %.1f s", self._where, self._back - since)


_PREFIX = re.compile(
    r"^(?:connection failed: )?(?:connection to server at .*? failed: )?(?:FATAL: +)?"
)
_REFUSALS = (
    "authentication failed",
    "no pg_hba.conf entry",
    "pg_hba.conf rejects",
    "no password supplied",
    "does not exist",
    "is not permitted to log in",
    "permission denied for database",
)
"""What the server (or libpq) says when it refuses a connection it will refuse again: a wrong
password or user (28P01, 28000), a database that does not exist (3D000), no CONNECT right.
Connection errors carry no SQLSTATE, so their (English) text is all there is to go by."""


def reason(exc: BaseException) -> str:
    """Why a connection or statement failed, in one short line.

    libpq's hints (the indented lines) and the repeated "connection to server at ... failed"
    prefix go: the store's URL already names the server.
    """
    lines = [line for line in str(exc).splitlines() if line and not line[0].isspace()]
    text = " ".join(" ".join(_PREFIX.sub("", line).split()) for line in lines)
    if not text:
        return type(exc).__name__
    if isinstance(exc, OSError) or type(exc).__module__.startswith("psycopg"):
        return text
    return f"{type(exc).__name__}: {text}"


def refusal(exc: BaseException) -> str | None:
    """The reason, if `exc` is a connection the server refused for good (not an outage)."""
    text = reason(exc)
    lowered = text.lower()
    return text if any(phrase in lowered for phrase in _REFUSALS) else None


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
