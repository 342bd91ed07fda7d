"""DashboardServer over a real socket, on asyncio and trio: headers, streams, ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx
import pytest
from dashboard_support import add

from wireframe.dashboard import DashboardServer
from wireframe.dashboard.security import safe_url, token_from, token_matches
from wireframe.service import Service
from wireframe.store import SqliteStore

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def serving(server: DashboardServer) -> AsyncIterator[httpx.AsyncClient]:
    service = Service(name="dash", handle_signals=False)
    service.add_task(server)
    async with anyio.create_task_group() as tg:
        tg.start_soon(service.run)
        port = await server.started()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
        service.stop("test over")


async def test_serves_with_security_headers_and_streams_events(
    tmp_path: Path, anyio_backend: str
) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    async with store:
        await add(store)
    server = DashboardServer(f"sqlite:///{tmp_path / 'jobs.db'}", port=0, interval=0.05)
    assert server.host == "127.0.0.1" and server.read_only
    async with serving(server) as client:
        page = await client.get("/jobs")
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        async with client.stream("GET", "/events") as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            lines = events.aiter_lines()
            while await lines.__anext__() != "event: tick":
                pass
            assert (await lines.__anext__()).startswith('data: {"version": ')
        refused = await client.post("/jobs/1/cancel", headers={"x-wireframe-token": "x"})
        assert refused.status_code == 403


async def test_a_taken_port_is_an_error_naming_it(tmp_path: Path, anyio_backend: str) -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0) as taken:
        port = taken.extra(anyio.abc.SocketAttribute.local_port)
        server = DashboardServer("sqlite:///x.db", port=port)
        with pytest.raises(OSError, match=f"dashboard cannot listen on 127.0.0.1:{port}"):
            await server.prepare()


def test_tokens_compare_whole_and_refuse_blank(monkeypatch: pytest.MonkeyPatch) -> None:
    assert token_matches("abc", "abc")
    assert not token_matches("abc", "abd") and not token_matches("abc", "ab")
    assert not token_matches(None, "abc") and not token_matches("abc", None)
    monkeypatch.setenv("WIREFRAME_DASHBOARD_TOKEN", "from-env")
    assert token_from(None) == "from-env" and token_from("given") == "given"
    with pytest.raises(ValueError, match="must not be empty"):
        token_from("  ")
    monkeypatch.delenv("WIREFRAME_DASHBOARD_TOKEN")
    assert token_from(None) is None


def test_passwords_are_redacted_from_store_urls() -> None:
    assert safe_url("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert safe_url("postgresql://h/db?password=pw&x=1") == "postgresql://h/db?password=***&x=1"
    assert safe_url("sqlite:///tmp/a.db") == "sqlite:///tmp/a.db"


def test_bad_settings_are_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="port must be"):
        DashboardServer("memory://", port=70000)
    with pytest.raises(ValueError, match="interval=0"):
        DashboardServer("memory://", interval=0)


async def test_mounted_beside_a_health_server_on_the_apps_own_store(anyio_backend: str) -> None:
    from wireframe.service import HealthServer
    from wireframe.store import MemoryStore

    store = MemoryStore()
    async with store:
        job_id = await add(store, payload='{"path": "/a.jpg"}')
        service = Service(name="app", handle_signals=False)
        health = HealthServer(service, port=0)
        board = DashboardServer(store, port=0, token="tok")
        service.add_task(health).add_task(board)
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            health_port, board_port = await health.started(), await board.started()
            async with httpx.AsyncClient() as client:
                ok = await client.get(f"http://127.0.0.1:{health_port}/health")
                page = await client.get(f"http://127.0.0.1:{board_port}/jobs/{job_id}")
                done = await client.post(
                    f"http://127.0.0.1:{board_port}/jobs/{job_id}/cancel",
                    headers={"x-wireframe-token": "tok"},
                )
            service.stop("test over")
        assert ok.status_code == 200
        assert page.status_code == 200 and "/a.jpg" in page.text
        assert done.json()["state"] == "cancelled"
        assert (await store.get(job_id)).state.value == "cancelled"  # type: ignore[union-attr]
