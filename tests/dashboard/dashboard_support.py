"""Helpers of the dashboard tests: a store with a few jobs, and requests to the app."""

from __future__ import annotations

from typing import Any

from wireframe.dashboard._http import Request, Response, Stream
from wireframe.dashboard.app import Dashboard
from wireframe.dashboard.sampler import Sampler
from wireframe.store import ClaimRequest, Fail, NewJob, Store, Submitted

XSS = "<script>alert(1)</script>"


async def add(store: Store, type: str = "media::resize", payload: str = "{}", **kw: Any) -> int:
    """Submit one job; return its id."""
    [result] = await store.submit(
        [NewJob(type=type, domain=type.split("::")[0], payload=payload, **kw)]
    )
    assert isinstance(result, Submitted)
    return result.id


async def add_failed(store: Store, error: str = "ValueError: broken") -> int:
    """A job that ran once and failed for good."""
    job_id = await add(store, type="fail::boom")
    [claimed] = await store.claim(
        ClaimRequest(worker_id="w", limit=1, lease_ttl=30.0, domains=("fail",))
    )
    assert claimed.id == job_id
    await store.finish([Fail(claimed.lease, error, traceback=f"Traceback...\n{error}")])
    return job_id


def app(store: Store, *, token: str | None = None, url: str | None = None) -> Dashboard:
    """The dashboard's request handler on `store` (no server, no socket)."""
    return Dashboard(
        store, Sampler(store, interval=0.05), token=token, host="127.0.0.1", url=url or store.url
    )


async def call(
    dashboard: Dashboard,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Response:
    """One request to the handler; the response (not a stream)."""
    from urllib.parse import parse_qs, urlsplit

    parts = urlsplit(path)
    answer = await dashboard.handle(
        Request(
            method=method,
            path=parts.path,
            query=parse_qs(parts.query),
            headers={"host": "127.0.0.1:8321", **(headers or {})},
            body=body,
        )
    )
    assert isinstance(answer, Response), answer
    return answer


async def stream(dashboard: Dashboard, path: str = "/events") -> Stream:
    """The streamed answer of `path`."""
    answer = await dashboard.handle(
        Request(method="GET", path=path, query={}, headers={"host": "localhost:8321"})
    )
    assert isinstance(answer, Stream), answer
    return answer


def text(response: Response) -> str:
    """The body as text."""
    return response.body.decode("utf-8")
