"""HealthServer: ``/health``, ``/ready`` and ``/metrics`` over HTTP/1.1 (h11 on anyio sockets).

h11 is a sans-IO HTTP/1.1 state machine: it parses and frames bytes and never touches a
socket, so the same server runs on asyncio and trio through anyio streams.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc
import h11

from wireframe.service.kinds import TaskKind
from wireframe.service.listening import Listening
from wireframe.service.metrics import CONTENT_TYPE, Collector, MetricsRegistry, service_collector
from wireframe.service.status import TaskState
from wireframe.service.task import UnconstrainedTask

if TYPE_CHECKING:
    from wireframe.service.service import Service
    from wireframe.service.stop import StopReceiver

log = logging.getLogger("wireframe.service.health")

MAX_REQUEST_BYTES = 16 * 1024
"""Requests whose head is larger than this are refused (431) and the connection closed."""

READ_TIMEOUT = 10.0
"""Seconds a connection may stay silent before the server closes it."""

CLOSE_GRACE = 0.5
"""Seconds requests under way at stop get to be answered before their connections are cut."""


class _Connections:
    """The open connections; those idle between requests are closed at once at stop."""

    def __init__(self) -> None:
        self.idle: set[anyio.CancelScope] = set()
        self.open = 0
        self.closing = False
        self.all_closed = anyio.Event()

    def opened(self, scope: anyio.CancelScope) -> None:
        self.open += 1
        if self.closing:
            scope.cancel()

    def ended(self, scope: anyio.CancelScope) -> None:
        self.idle.discard(scope)
        self.open -= 1
        if self.closing and self.open == 0:
            self.all_closed.set()

    def close(self) -> None:
        """Stop serving: close idle connections; the others end after their response."""
        self.closing = True
        for scope in self.idle:
            scope.cancel()
        if self.open == 0:
            self.all_closed.set()


class HealthServer(Listening, UnconstrainedTask):
    """Serves liveness (``/health``), readiness (``/ready``) and Prometheus ``/metrics``.

    It is an ``UnconstrainedTask``: it starts at once, so ``/ready`` answers 503 while the
    preconditions run and 200 once ``service.status().ready``. It binds its port in
    ``prepare``, which the precondition barrier waits for: if the port is taken the service
    fails before any constrained task (a Scheduler claiming jobs) starts. It stops last: it
    keeps answering while the other tasks drain (``/ready`` is 503 from the moment the stop
    begins, ``/health`` 200) and closes once they have all ended. Pass ``port=0`` to bind a
    free port; ``await server.started()`` returns the port actually bound.
    """

    server_name = "health server"
    stops_last = True

    def __init__(
        self,
        service: Service,
        *,
        host: str = "127.0.0.1",
        port: int = 8000,
        collectors: tuple[Collector, ...] | list[Collector] = (),
        registry: MetricsRegistry | None = None,
        id: str = "health",
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"HealthServer port must be an int in 0..65535, got {port!r}")
        self.id = id
        self.service = service
        self._init_listening(host, port)
        self.registry = registry if registry is not None else MetricsRegistry()
        self.registry.register(service_collector(service))
        for collector in collectors:
            self.registry.register(collector)
        self._connections = _Connections()

    def __repr__(self) -> str:
        return f"<HealthServer {self.id!r} on {self.host}:{self.port}>"

    def add_collector(self, collector: Collector) -> HealthServer:
        """Add a metrics collector (a callable returning metric families); returns the server."""
        self.registry.register(collector)
        return self

    async def prepare(self) -> None:
        """Bind the port (before constrained tasks start); raise OSError naming it if taken."""
        await self._bind()
        self._listening()
        log.info("health server listening on %s", self.url)

    async def run(self, stop: StopReceiver) -> None:
        """Answer requests until stop (binding first unless ``prepare`` did)."""
        listener = await self._take()
        async with anyio.create_task_group() as tg:
            for collector in self.registry.collectors:
                background = getattr(collector, "background", None)
                if callable(background):
                    tg.start_soon(background)
            await self._serve(listener, stop)
            tg.cancel_scope.cancel()

    async def _serve(
        self, listener: anyio.abc.Listener[anyio.abc.SocketStream], stop: StopReceiver
    ) -> None:
        """Accept until stop; then answer the requests under way (``CLOSE_GRACE`` at most)."""
        connections = self._connections = _Connections()
        async with anyio.create_task_group() as served:
            async with listener, anyio.create_task_group() as accepting:
                accepting.start_soon(listener.serve, self._serve_connection, served)
                await stop.wait()
                accepting.cancel_scope.cancel()
            connections.close()
            with anyio.move_on_after(CLOSE_GRACE):
                await connections.all_closed.wait()
            served.cancel_scope.cancel()

    # -- HTTP ---------------------------------------------------------------------------------

    async def _serve_connection(self, stream: anyio.abc.SocketStream) -> None:
        connections = self._connections
        with anyio.CancelScope() as scope:
            connections.opened(scope)
            try:
                await self._serve_requests(stream, scope)
            finally:
                connections.ended(scope)

    async def _serve_requests(
        self, stream: anyio.abc.SocketStream, scope: anyio.CancelScope
    ) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)
        async with stream:
            try:
                while await self._serve_one(conn, stream, scope):
                    conn.start_next_cycle()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError):
                pass
            except h11.RemoteProtocolError as exc:
                await self._send_error(conn, stream, exc)
            except Exception:  # one bad connection must not take the server down
                log.exception("health server: error while serving a connection")

    async def _serve_one(
        self, conn: h11.Connection, stream: anyio.abc.SocketStream, scope: anyio.CancelScope
    ) -> bool:
        """Answer one request; True if the connection can carry another one.

        The connection counts as idle (closed at once if the server stops) until the first
        bytes of the request arrive.
        """
        request: h11.Request | None = None
        idle = self._connections.idle
        fresh = True  # nothing of this request received yet
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if fresh:
                    idle.add(scope)
                with anyio.fail_after(READ_TIMEOUT):
                    try:
                        data = await stream.receive()
                    except anyio.EndOfStream:
                        data = b""
                idle.discard(scope)
                fresh = False
                conn.receive_data(data)
            elif isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                return False
        assert request is not None
        status, content_type, body = await self._route(request)
        head = request.method == b"HEAD"
        await self._send(conn, stream, status, content_type, body, head=head)
        if self._connections.closing:
            return False
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _route(self, request: h11.Request) -> tuple[int, str, bytes]:
        path = request.target.split(b"?", 1)[0].decode("ascii", "replace")
        if request.method not in (b"GET", b"HEAD"):
            return _json(405, {"error": f"method {request.method.decode()} not allowed"})
        if path == "/health":
            status = self.service.status()
            return _json(200, {"status": "ok", "service": status.name, "phase": status.phase.value})
        if path == "/ready":
            return self._readiness()
        if path == "/metrics":
            try:
                text = await self.registry.render()
            except Exception as exc:
                log.exception("metrics collection failed")
                return _json(500, {"error": f"metrics collection failed: {exc!r}"})
            return 200, CONTENT_TYPE, text.encode()
        return _json(404, {"error": f"no such path {path!r}; try /health, /ready or /metrics"})

    def _readiness(self) -> tuple[int, str, bytes]:
        """200 when the service is ready; else 503 naming what it waits for, or why it stops."""
        status = self.service.status()
        waiting = [t.id for t in status.tasks if t.state in _NOT_STARTED]
        preconditions = [
            t.id for t in status.tasks if t.kind is TaskKind.PRECONDITION and t.state in _UNFINISHED
        ]
        reason = status.stop_reason
        body = {
            "ready": status.ready,
            "service": status.name,
            "phase": status.phase.value,
            "preconditions": preconditions,
            "waiting": waiting,
            "stop_reason": None if reason is None else str(reason),
            "in_stop_delay": status.in_stop_delay,
        }
        return _json(200 if status.ready else 503, body)

    async def _send(
        self,
        conn: h11.Connection,
        stream: anyio.abc.SocketStream,
        status: int,
        content_type: str,
        body: bytes,
        *,
        head: bool = False,
    ) -> None:
        headers = [
            ("content-type", content_type),
            ("content-length", str(len(body))),
            ("cache-control", "no-store"),
        ]
        await stream.send(conn.send(h11.Response(status_code=status, headers=headers)) or b"")
        if body and not head:
            await stream.send(conn.send(h11.Data(data=body)) or b"")
        await stream.send(conn.send(h11.EndOfMessage()) or b"")

    async def _send_error(
        self, conn: h11.Connection, stream: anyio.abc.SocketStream, exc: h11.RemoteProtocolError
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        status, content_type, body = _json(exc.error_status_hint, {"error": str(exc)})
        try:
            await self._send(conn, stream, status, content_type, body)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, h11.LocalProtocolError):
            pass


_NOT_STARTED = (TaskState.PENDING, TaskState.WAITING)
_UNFINISHED = (
    TaskState.PENDING,
    TaskState.WAITING,
    TaskState.RUNNING,
    TaskState.RESTARTING,
    TaskState.STOPPING,
)


def _json(status: int, data: dict[str, Any]) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(data).encode()
