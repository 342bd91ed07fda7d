"""systemd's notify protocol: readiness, status, stopping, watchdog pings and stop extensions.

A service run under systemd with ``Type=notify`` finds ``NOTIFY_SOCKET`` in its environment;
the service then adds a ``SystemdNotifier`` itself. Without that variable nothing is created.
"""

from __future__ import annotations

import logging
import os
import socket
from typing import TYPE_CHECKING, Protocol

import anyio

from wireframe.service.errors import ServiceConfigError
from wireframe.service.status import ServicePhase, ServiceStatus, TaskState
from wireframe.service.task import UnconstrainedTask

if TYPE_CHECKING:
    from wireframe.service.stop import StopReceiver

__all__ = ["EXTEND_INTERVAL", "SystemdNotifier"]

log = logging.getLogger("wireframe.service.systemd")

EXTEND_INTERVAL = 5.0
"""Seconds between two ``EXTEND_TIMEOUT_USEC`` messages while tasks are still draining."""


class _RunLike(Protocol):
    """What the notifier reads of a service run (its phase, and an event set on each change)."""

    @property
    def phase(self) -> ServicePhase:
        """The run's current phase."""

    @property
    def phase_changed(self) -> anyio.Event:
        """Set at the next phase change (a new event is made for the one after)."""

    def status(self) -> ServiceStatus:
        """Snapshot the run."""


def _address(value: str) -> str:
    """The socket address of ``NOTIFY_SOCKET``: a path, or ``@name`` for an abstract socket."""
    if value.startswith("@"):
        return "\0" + value[1:]
    if not value.startswith("/"):
        raise ServiceConfigError(
            f"NOTIFY_SOCKET must be an absolute path or @abstract name, got {value!r}"
        )
    return value


def watchdog_interval(environ: dict[str, str] | os._Environ[str]) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half ``WATCHDOG_USEC``), or None: no watchdog.

    None when ``WATCHDOG_USEC`` is unset or ``WATCHDOG_PID`` names another process.
    """
    raw = environ.get("WATCHDOG_USEC")
    if not raw:
        return None
    pid = environ.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(raw)
    except ValueError:
        usec = 0
    if usec <= 0:
        raise ServiceConfigError(f"WATCHDOG_USEC must be a positive integer, got {raw!r}")
    return usec / 2_000_000


class SystemdNotifier(UnconstrainedTask):
    """Tells systemd how the service is doing over the ``NOTIFY_SOCKET`` datagram socket.

    Sends ``READY=1`` once the service is ready, ``STATUS=<phase>`` as the phase changes,
    ``STOPPING=1`` when the stop begins, ``WATCHDOG=1`` every half of ``WATCHDOG_USEC`` (from
    the event loop, so a blocked loop stops the pings and systemd restarts the service), and,
    every ``extend_interval`` seconds while other tasks are still stopping within the graceful
    timeout, ``EXTEND_TIMEOUT_USEC`` so a long drain is not killed by ``TimeoutStopSec``. It
    stops last. A send that fails is logged once at WARNING and never fails the service.
    """

    stops_last = True

    def __init__(
        self,
        run: _RunLike,
        notify_socket: str,
        *,
        graceful_timeout: float,
        watchdog: float | None = None,
        extend_interval: float | None = None,
        id: str = "systemd-notify",
    ) -> None:
        self.id = id
        self._run = run
        self._address = _address(notify_socket)
        self._graceful_timeout = graceful_timeout
        self._watchdog = watchdog
        self._extend_interval = EXTEND_INTERVAL if extend_interval is None else extend_interval
        self._sock: socket.socket | None = None
        self._warned = False

    def __repr__(self) -> str:
        return f"<SystemdNotifier {self.id!r} watchdog={self._watchdog}>"

    @classmethod
    def from_env(
        cls,
        run: _RunLike,
        graceful_timeout: float,
        environ: dict[str, str] | os._Environ[str] = os.environ,
    ) -> SystemdNotifier | None:
        """A notifier if ``NOTIFY_SOCKET`` is set, else None (and nothing else happens)."""
        value = environ.get("NOTIFY_SOCKET")
        if not value:
            return None
        return cls(
            run,
            value,
            graceful_timeout=graceful_timeout,
            watchdog=watchdog_interval(environ),
        )

    def send(self, message: str) -> bool:
        """Send one datagram to systemd; return False (warning once) if it could not be sent."""
        try:
            if self._sock is None:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                sock.setblocking(False)
                self._sock = sock
            self._sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("cannot notify systemd at %r: %s", self._address, exc)
            return False
        return True

    async def run(self, stop: StopReceiver) -> None:
        """Report until this task's stop arrives (once every other task has ended)."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._report)
                await stop.wait()
                tg.cancel_scope.cancel()
        finally:
            if self._sock is not None:
                self._sock.close()
                self._sock = None

    async def _report(self) -> None:
        run = self._run
        sent: ServicePhase | None = None
        next_ping = anyio.current_time()
        stop_deadline = next_extend = float("inf")
        while True:
            changed = run.phase_changed
            phase = run.phase
            now = anyio.current_time()
            if phase is not sent:
                sent = phase
                self.send(_phase_message(phase))
                if phase is ServicePhase.STOPPING:
                    stop_deadline = now + self._graceful_timeout
                    next_extend = now
            if self._watchdog is not None and now >= next_ping:
                self.send("WATCHDOG=1")
                next_ping = now + self._watchdog
            if now >= next_extend:
                next_extend = self._extend(now, stop_deadline)
            wake = min(next_ping if self._watchdog is not None else float("inf"), next_extend)
            with anyio.move_on_after(max(0.0, wake - now)):
                await changed.wait()

    def _extend(self, now: float, stop_deadline: float) -> float:
        """Extend systemd's stop timeout while others drain; return when to look again."""
        if now >= stop_deadline or not self._draining():
            return float("inf") if now >= stop_deadline else now + self._extend_interval
        usec = int(self._extend_interval * 2 * 1_000_000)
        self.send(f"EXTEND_TIMEOUT_USEC={usec}")
        return now + self._extend_interval

    def _draining(self) -> bool:
        return any(
            t.state is TaskState.STOPPING and t.id != self.id for t in self._run.status().tasks
        )


def _phase_message(phase: ServicePhase) -> str:
    status = f"STATUS={phase.value}"
    if phase is ServicePhase.READY:
        return "READY=1\n" + status
    if phase is ServicePhase.STOPPING:
        return "STOPPING=1\n" + status
    return status
