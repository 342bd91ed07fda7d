"""What a task that serves HTTP on a TCP port shares: its address, binding, and `started()`."""

from __future__ import annotations

from typing import ClassVar

import anyio
import anyio.abc

__all__ = ["Listening"]


class Listening:
    """A mixin for tasks listening on ``host:port`` (port 0: any free one).

    ``_bind()`` (from ``prepare``) binds the port or raises OSError naming the server and the
    address; ``started()`` waits for the outcome and returns the bound port; ``_take()`` hands
    the listener to the serving loop, binding first if ``prepare`` did not.
    """

    server_name: ClassVar[str] = "server"
    """How errors name the server (``health server cannot listen on ...``)."""
    host: str
    port: int

    def _init_listening(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._bound = anyio.Event()
        self._error: BaseException | None = None
        self._listener: anyio.abc.Listener[anyio.abc.SocketStream] | None = None

    @property
    def url(self) -> str:
        """``http://host:port`` (the bound port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def started(self) -> int:
        """Wait until the server listens; return the bound port (raises if it could not)."""
        await self._bound.wait()
        if self._error is not None:
            raise RuntimeError(f"{self!r} did not start: {self._error}") from self._error
        return self.port

    def _listening(self) -> None:
        """The server serves: `started()` returns the port from now on."""
        self._bound.set()

    def _failed(self, exc: BaseException) -> None:
        """The server will not serve: `started()` raises `exc` from now on."""
        self._error = exc
        self._bound.set()

    async def _bind(self) -> None:
        """Listen on the address; OSError naming the server and the address if taken."""
        try:
            listener = await anyio.create_tcp_listener(local_host=self.host, local_port=self.port)
        except OSError as exc:
            self._failed(exc)
            why = exc.strerror or str(exc)
            raise OSError(
                exc.errno, f"{self.server_name} cannot listen on {self.host}:{self.port}: {why}"
            ) from None
        self._listener = listener
        self.port = int(listener.extra(anyio.abc.SocketAttribute.local_port))

    async def _take(self) -> anyio.abc.Listener[anyio.abc.SocketStream]:
        """The bound listener, handed over once (bound now if `prepare` has not)."""
        if self._listener is None:
            await self.prepare()
        listener, self._listener = self._listener, None
        assert listener is not None
        return listener

    async def prepare(self) -> None:
        """Bind the port (overridden by each server, which calls `_bind`)."""
        await self._bind()
