"""The dashboard's pages and actions: a small router over the Store protocol.

Pages are rendered on the server with Jinja2 (autoescaping every value: a payload holding
``<script>`` is shown as text); ``?partial=1`` renders only a page's live region, which the
browser's script reloads when the event stream (``/events``) says the store changed. Actions
are POSTs that carry the token; without a configured token the dashboard is read-only.
"""

from __future__ import annotations

import contextvars
import inspect
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from importlib import resources
from typing import Any, cast

import anyio

from wireframe.dashboard import views
from wireframe.dashboard._http import Request, Response, Stream
from wireframe.dashboard.plots import Plot, plot
from wireframe.dashboard.sampler import Sample, Sampler
from wireframe.dashboard.security import TOKEN_HEADER, host_allowed, safe_url, token_matches
from wireframe.store import JobState, Store, StoreError, UnknownJobError

log = logging.getLogger("wireframe.dashboard")

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
KEEPALIVE = 15.0
"""Seconds between comments on an idle event stream (they notice a browser that left)."""

STATIC: Mapping[str, str] = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

_JOB = re.compile(r"^/jobs/(\d{1,18})$")
_ACTION = re.compile(r"^/jobs/(\d{1,18})/(cancel|retry|pause|resume)$")


def _environment() -> Any:
    """The Jinja2 environment (autoescape on for every template)."""
    try:
        import jinja2
    except ImportError:  # pragma: no cover - the extra is missing
        raise RuntimeError(
            "the dashboard needs Jinja2: pip install 'wireframe[dashboard]'"
        ) from None
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("wireframe.dashboard", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=views.when, seconds=views.seconds, short=views.short, pretty=views.pretty
    )
    return env


def _text(status: int, message: str) -> Response:
    return Response(status, message.encode(), "text/plain; charset=utf-8")


def _json(status: int, data: object) -> Response:
    return Response(status, json.dumps(data).encode(), "application/json")


_LIVE: contextvars.ContextVar[bool] = contextvars.ContextVar("dashboard_live", default=False)
"""True while answering a live refresh (``?partial=1``), which the page's script makes by itself."""


class _Metered:
    """A store whose calls, made for a live refresh, are timed and paid from the sampler's
    allowance (`Sampler.charge`): what an open dashboard does by itself stays within its 1 %
    of the store's time. Pages a person asks for are not counted (like CLI commands)."""

    def __init__(self, store: Store, charge: Callable[[float], None]) -> None:
        self._store = store
        self._charge = charge

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def metered(*args: Any, **kwargs: Any) -> Any:
            if not _LIVE.get():
                return await attr(*args, **kwargs)
            started = time.perf_counter()
            try:
                return await attr(*args, **kwargs)
            finally:
                self._charge(time.perf_counter() - started)

        return metered


class Dashboard:
    """Answers the dashboard's requests for one store (see the module docstring)."""

    def __init__(
        self, store: Store, sampler: Sampler, *, token: str | None, host: str, url: str
    ) -> None:
        self.store = cast(Store, _Metered(store, sampler.charge))
        self.sampler = sampler
        self.token = token
        self.host = host
        self.url = safe_url(url)
        self.env = _environment()

    # -- routing ----------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response | Stream:
        """Answer one request (a live refresh pays its store calls from the sampler's
        allowance)."""
        if not host_allowed(self.host, request.headers.get("host")):
            return _text(403, "this dashboard answers only requests addressed to this machine")
        if request.method == "POST":
            return await self._post(request)
        if request.method not in ("GET", "HEAD"):
            return _text(405, f"method {request.method} not allowed")
        live = _LIVE.set(bool(request.arg("partial")))
        try:
            return await self._get(request)
        finally:
            _LIVE.reset(live)

    async def _get(self, request: Request) -> Response | Stream:
        path = request.path
        if path == "/events":
            return Stream(self._events)
        if path == "/favicon.ico":
            return self._static("favicon.svg")
        if path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        try:
            if path == "/":
                return await self._page(request, "overview.html", await self._overview())
            if path == "/jobs":
                return await self._jobs(request)
            if match := _JOB.match(path):
                return await self._job(request, int(match.group(1)))
            if path == "/workers":
                return await self._page(request, "workers.html", {})
            if path == "/schedules":
                return await self._schedules(request)
        except ValueError as exc:
            return _text(400, str(exc))
        return _text(404, f"no page {path!r}")

    # -- pages ------------------------------------------------------------------------------

    async def _sample(self) -> Sample:
        return self.sampler.latest or await self.sampler.sample(free=True)

    async def _page(
        self, request: Request, name: str, values: Mapping[str, Any], status: int = 200
    ) -> Response:
        sample = await self._sample()
        context = {
            "store_url": self.url,
            "can_act": self.token is not None,
            "version": sample.version,
            "sample": sample,
            "path": request.path,
            **values,
        }
        template = self.env.get_template(name)
        if request.arg("partial"):
            html = "".join(template.blocks["live"](template.new_context(context)))
        else:
            html = template.render(context)
        return Response(status, html.encode("utf-8"))

    async def _overview(self) -> dict[str, Any]:
        sample = await self._sample()
        totals: dict[str, dict[str, int]] = {}
        for (domain, state), n in sample.active.items():
            totals.setdefault(domain, {})[state.value] = n
        for (domain, state), n in sample.activity.ended.items():
            totals.setdefault(domain, {}).setdefault(f"recent_{state.value}", n)
        plots: list[tuple[str, Plot, Plot]] = []
        for domain, points in sorted(self.sampler.domains().items()):
            totals.setdefault(domain, {})
            times = [p.at for p in points]
            depth = plot(
                "queue depth",
                times,
                [
                    ("line-queued", "pending", [p.queued for p in points]),
                    ("line-running", "running", [p.running for p in points]),
                ],
            )
            rate = plot(
                "throughput (jobs/s)",
                times,
                [
                    ("line-completed", "completed/s", [p.completed_rate for p in points]),
                    ("line-failed", "failed/s", [p.failed_rate for p in points]),
                ],
            )
            plots.append((domain, depth, rate))
        states = [s.value for s in JobState if not s.terminal]
        return {"totals": dict(sorted(totals.items())), "plots": plots, "states": states}

    async def _jobs(self, request: Request) -> Response:
        args = {name: request.arg(name) for name in ("state", "domain", "type", "tag", "q")}
        args |= {"before": request.arg("before"), "after": request.arg("after")}
        limit = _limit(request.arg("limit"))
        query = views.parse_query(args, limit)
        page = await self.store.find_jobs(query)
        sample = await self._sample()
        types = [t.type for t in await self.store.job_types()]
        domains = sorted({d for d, _ in sample.active} | set(self.sampler.domains()))
        filters = {k: v for k, v in args.items() if v and k not in ("before", "after")}
        if limit != PAGE_SIZE:
            filters["limit"] = str(limit)
        values = {
            "page": page,
            "filters": filters,
            "states": [s.value for s in JobState],
            "domains": domains,
            "types": types,
            "searching": query.scans,
            "scan_window": query.scan,
        }
        return await self._page(request, "jobs.html", values)

    async def _job(self, request: Request, job_id: int) -> Response:
        job = await self.store.get(job_id)
        if job is None:
            return await self._page(request, "missing.html", {"job_id": job_id}, status=404)
        detail = await views.detail(self.store, job)
        values = {"d": detail, "j": job, "actions": views.actions_for(job)}
        return await self._page(request, "job.html", values)

    async def _schedules(self, request: Request) -> Response:
        sample = await self._sample()
        described = [(s, views.describe_schedule(s)) for s in sample.schedules]
        return await self._page(request, "schedules.html", {"schedules": described})

    def _static(self, name: str) -> Response:
        content_type = STATIC.get(name)
        if content_type is None:
            return _text(404, "no such file")
        data = resources.files("wireframe.dashboard").joinpath("static", name).read_bytes()
        return Response(200, data, content_type)

    # -- live updates -----------------------------------------------------------------------

    async def _events(self) -> AsyncIterator[bytes]:
        """Server-Sent Events: a ``tick`` carrying the sample's version each time it changes."""
        yield b"retry: 2000\n\n"
        version = -1
        while True:
            with anyio.move_on_after(KEEPALIVE) as idle:
                version = await self.sampler.changed(version)
            if idle.cancelled_caught:
                yield b": keepalive\n\n"
                continue
            yield f"event: tick\ndata: {json.dumps({'version': version})}\n\n".encode()

    # -- actions ----------------------------------------------------------------------------

    async def _post(self, request: Request) -> Response:
        match = _ACTION.match(request.path)
        if match is None:
            return _text(404 if request.path.startswith("/jobs/") else 405, "no such action")
        if self.token is None:
            return _text(403, "read-only dashboard: start it with --token to allow actions")
        given = request.headers.get(TOKEN_HEADER)
        from_script = given is not None
        if given is None:
            given = request.form().get("token")
        if not token_matches(self.token, given):
            return _text(403, "wrong or missing token")
        job_id, action = int(match.group(1)), match.group(2)
        status, message = await self._act(job_id, action)
        if not from_script:
            if status != 200:
                return _text(status, message)
            return Response(303, b"", "text/plain", headers=(("location", f"/jobs/{job_id}"),))
        job = await self.store.get(job_id)
        state = None if job is None else job.state.value
        return _json(status, {"ok": status == 200, "message": message, "state": state})

    async def _act(self, job_id: int, action: str) -> tuple[int, str]:
        """Apply an action: (HTTP status, message)."""
        try:
            if action == "cancel":
                state = await self.store.cancel(job_id, "cancelled from the dashboard")
                message = (
                    "cancel requested (it is running)" if state is JobState.RUNNING else state.value
                )
            elif action == "pause":
                message = f"{await self.store.pause(job_id)} job(s) paused or asked to pause"
            elif action == "resume":
                message = f"{await self.store.resume(job_id)} job(s) resumed"
            else:
                await self.store.retry(job_id)
                message = "queued to run again"
        except UnknownJobError:
            return 404, f"no job with id {job_id}"
        except StoreError as exc:
            return 409, f"cannot {action} job {job_id}: {exc}"
        log.info("dashboard: %s job %s: %s", action, job_id, message)
        return 200, f"job {job_id}: {message}"


def _limit(raw: str | None) -> int:
    if not raw:
        return PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE_SIZE:
        raise ValueError(f"limit={raw!r} must be a whole number from 1 to {MAX_PAGE_SIZE}")
    return int(raw)
