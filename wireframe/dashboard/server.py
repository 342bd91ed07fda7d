"""DashboardServer: the web dashboard as a task of a service, beside a `HealthServer`."""

from __future__ import annotations

import importlib.util
import logging
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from wireframe.dashboard._http import HttpServer
from wireframe.dashboard.app import Dashboard
from wireframe.dashboard.sampler import Sampler, check_interval
from wireframe.dashboard.security import safe_url, token_from
from wireframe.service.listening import Listening
from wireframe.service.task import UnconstrainedTask
from wireframe.store import Store, store_from_url

if TYPE_CHECKING:
    from wireframe.service.stop import StopReceiver

log = logging.getLogger("wireframe.dashboard")

DEFAULT_PORT = 8321
"""The port `wireframe dashboard` listens on unless told otherwise."""


class DashboardServer(Listening, UnconstrainedTask):
    """Serves the web dashboard of a store: jobs, workers, schedules, plots, live updates.

    `store` is a store URL (the server opens the store when it starts and closes it at stop;
    opening brings the schema up to date) or a `Store` that its owner opens and closes. It
    binds `host` (loopback by default) in ``prepare``; ``port=0`` takes a free port and
    ``await server.started()`` returns it. Without a `token` (nor ``$WIREFRAME_DASHBOARD_TOKEN``)
    the dashboard is read-only; with one, its cancel, retry, pause and resume buttons work for a
    browser that gives the token. `interval` is the seconds between samples of the store.
    """

    server_name = "dashboard"

    def __init__(
        self,
        store: Store | str,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        token: str | None = None,
        interval: float = 2.0,
        id: str = "dashboard",
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"DashboardServer port must be an int in 0..65535, got {port!r}")
        check_interval(interval)
        if importlib.util.find_spec("jinja2") is None:
            raise RuntimeError("the dashboard needs Jinja2: pip install 'wireframe[dashboard]'")
        self.id = id
        self._init_listening(host, port)
        self.token = token_from(token)
        self._owned = isinstance(store, str)
        self.store: Store = store_from_url(store, create=False) if isinstance(store, str) else store
        self.sampler = Sampler(self.store, interval=interval)

    def __repr__(self) -> str:
        where = safe_url(self.store.url)
        return f"<DashboardServer {self.id!r} of {where} on {self.host}:{self.port}>"

    @property
    def read_only(self) -> bool:
        """True when no token is configured: the dashboard shows and never acts."""
        return self.token is None

    async def prepare(self) -> None:
        """Bind the port; raise OSError naming it if taken."""
        await self._bind()

    async def _prepare_browsing(self) -> None:
        """Give the store its browsing indexes (once; see `Store.prepare_browsing`). A store
        that refuses (not open yet, read-only) is still browsed, only more slowly."""
        try:
            await self.store.prepare_browsing()
        except Exception as exc:
            log.warning(
                "dashboard: could not add the browsing indexes (%s); pages may be slow", exc
            )

    async def run(self, stop: StopReceiver) -> None:
        """Open the store (if given by URL), sample it, and serve until stop."""
        listener = await self._take()
        try:
            if self._owned:
                await self.store.open()
        except BaseException as exc:
            self._failed(exc)
            await listener.aclose()
            raise
        await self._prepare_browsing()
        try:
            await self._serve(listener, stop)
        finally:
            if self._owned:
                with anyio.CancelScope(shield=True):
                    await self.store.close()

    async def _serve(
        self, listener: anyio.abc.Listener[anyio.abc.SocketStream], stop: StopReceiver
    ) -> None:
        app = Dashboard(
            self.store, self.sampler, token=self.token, host=self.host, url=self.store.url
        )
        await self.sampler.sample(free=True)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.sampler.run)
            tg.start_soon(HttpServer(app.handle).serve, listener)
            self._listening()
            mode = "read-only" if self.read_only else "actions need the token"
            log.info("dashboard of %s on %s (%s)", safe_url(self.store.url), self.url, mode)
            await stop.wait()
            tg.cancel_scope.cancel()
