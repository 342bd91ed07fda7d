"""A small HTTP/1.1 server on h11 and anyio sockets: requests in, responses or streams out.

The same sans-IO machinery as `HealthServer`, with what a dashboard needs besides: request
bodies (bounded), query strings, and streamed responses (Server-Sent Events). Runs on asyncio
and trio. Every response carries the security headers of `SECURITY_HEADERS`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

import anyio
import anyio.abc
import attrs
import h11

log = logging.getLogger("wireframe.dashboard")

MAX_HEAD_BYTES = 16 * 1024
"""Requests whose head is larger than this are refused (431)."""

MAX_BODY_BYTES = 64 * 1024
"""Request bodies larger than this are refused (413): actions carry a token and little else."""

READ_TIMEOUT = 30.0
"""Seconds a connection may stay silent between requests before it is closed."""

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
"""No inline script or style, nothing from elsewhere, never framed."""

SECURITY_HEADERS: tuple[tuple[str, str], ...] = (
    ("content-security-policy", CONTENT_SECURITY_POLICY),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
)
"""Sent with every response."""


@attrs.frozen
class Request:
    """One parsed request: method, path (percent-decoded), query, headers (lower-case names)."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes = b""

    def arg(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        """The body as a URL-encoded form (first value of each field)."""
        if "application/x-www-form-urlencoded" not in self.headers.get("content-type", ""):
            return {}
        fields = parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)
        return {name: values[0] for name, values in fields.items()}


@attrs.frozen
class Response:
    """A complete response."""

    status: int
    body: bytes
    content_type: str = "text/html; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


@attrs.frozen
class Stream:
    """A streamed response (Server-Sent Events): chunks until the iterator ends."""

    chunks: Callable[[], AsyncIterator[bytes]]
    content_type: str = "text/event-stream; charset=utf-8"


Handler = Callable[[Request], Awaitable[Response | Stream]]


def parse_request(event: h11.Request, body: bytes) -> Request:
    """A `Request` from h11's request event and the body received."""
    target = urlsplit(event.target.decode("ascii", "replace"))
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in event.headers
    }
    return Request(
        method=event.method.decode("ascii", "replace"),
        path=unquote(target.path) or "/",
        query=parse_qs(target.query, keep_blank_values=False),
        headers=headers,
        body=body,
    )


class HttpServer:
    """Serves `handler` on a bound listener until `serve`'s caller is cancelled."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def serve(self, listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
        """Accept connections for ever (cancel the caller to stop: streams end with it)."""
        async with listener:
            await listener.serve(self._connection)

    async def _connection(self, stream: anyio.abc.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        async with stream:
            try:
                while await self._one(conn, stream):
                    conn.start_next_cycle()
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, TimeoutError):
                pass
            except h11.RemoteProtocolError as exc:
                await self._refuse(conn, stream, exc.error_status_hint, str(exc))
            except Exception:  # one bad connection must not take the server down
                log.exception("dashboard: error while serving a connection")

    async def _receive(self, conn: h11.Connection, stream: anyio.abc.SocketStream) -> None:
        with anyio.fail_after(READ_TIMEOUT):
            try:
                data = await stream.receive()
            except anyio.EndOfStream:
                data = b""
        conn.receive_data(data)

    async def _read(
        self, conn: h11.Connection, stream: anyio.abc.SocketStream
    ) -> tuple[h11.Request, bytes] | int | None:
        """The request and its body; None if the peer closed; 413 if the body is too large."""
        event_request: h11.Request | None = None
        body = bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                await self._receive(conn, stream)
            elif isinstance(event, h11.Request):
                event_request = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_BODY_BYTES:
                    return 413
            elif isinstance(event, h11.EndOfMessage):
                assert event_request is not None
                return event_request, bytes(body)
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _one(self, conn: h11.Connection, stream: anyio.abc.SocketStream) -> bool:
        """Answer one request; True if the connection can carry another."""
        got = await self._read(conn, stream)
        if got is None:
            return False
        if isinstance(got, int):
            await self._refuse(conn, stream, got, "request body too large")
            return False
        event, body = got
        try:
            answer = await self.handler(parse_request(event, body))
        except Exception:
            log.exception(
                "dashboard: error while answering %s", event.target.decode(errors="replace")
            )
            answer = Response(500, b"internal error", "text/plain; charset=utf-8")
        if isinstance(answer, Stream):
            await self._stream(conn, stream, answer)
            return False
        await self._send(conn, stream, answer, head=event.method == b"HEAD")
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _send(
        self,
        conn: h11.Connection,
        stream: anyio.abc.SocketStream,
        response: Response,
        *,
        head: bool = False,
    ) -> None:
        headers = [
            ("content-type", response.content_type),
            ("content-length", str(len(response.body))),
            *SECURITY_HEADERS,
            *response.headers,
        ]
        await stream.send(conn.send(h11.Response(status_code=response.status, headers=headers)))
        if response.body and not head:
            await stream.send(conn.send(h11.Data(data=response.body)))
        await stream.send(conn.send(h11.EndOfMessage()))

    async def _stream(
        self, conn: h11.Connection, stream: anyio.abc.SocketStream, answer: Stream
    ) -> None:
        headers = [("content-type", answer.content_type), *SECURITY_HEADERS]
        await stream.send(conn.send(h11.Response(status_code=200, headers=headers)))
        chunks = answer.chunks()
        try:
            async for chunk in chunks:
                await stream.send(conn.send(h11.Data(data=chunk)))
            await stream.send(conn.send(h11.EndOfMessage()))
        finally:
            await chunks.aclose()  # type: ignore[attr-defined]

    async def _refuse(
        self, conn: h11.Connection, stream: anyio.abc.SocketStream, status: int, text: str
    ) -> None:
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        try:
            await self._send(conn, stream, Response(status, text.encode(), "text/plain"))
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, h11.LocalProtocolError):
            pass
