"""CLI test fixtures: a real store (a SQLite file, or a fresh PostgreSQL schema), the command as
a subprocess, a seeded store.

Every test that takes the `store_url` fixture runs once per kind in `STORE_KINDS`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "store"))

from cli_support import HERE, STORE_KINDS, WAIT, Cli, Result, cli_env, run_in_process, store_url_for


@pytest.fixture(
    params=[
        pytest.param(kind, marks=[pytest.mark.postgres] if kind == "postgresql" else [])
        for kind in STORE_KINDS
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh store URL for one test; a PostgreSQL schema is dropped afterwards."""
    url = store_url_for(str(request.param), tmp_path)
    yield url
    if "?schema=" in url:
        from pg_support import drop_schema

        drop_schema(url.rsplit("?schema=", 1)[1])


@pytest.fixture
def cli(store_url: str) -> Cli:
    """Run `python -m wireframe ARGS` with WIREFRAME_STORE set to the test's store."""

    def run(*args: str, store: str | None = store_url, **env: str) -> Result:
        proc = subprocess.run(
            [sys.executable, "-m", "wireframe", *args],
            capture_output=True,
            text=True,
            env=cli_env(store, **env),
            cwd=HERE,
            timeout=WAIT,
        )
        return Result(proc)

    return run


@pytest.fixture
def wf(store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """The same command in this process (`wireframe.cli.main`): for the long tail of cases.

    Every command also runs as a real subprocess through `cli`; this keeps the many error
    cases fast while still going through argument parsing, the store and the error handling.
    """

    monkeypatch.setenv("COLUMNS", "160")

    def run(*args: str, store: str | None = store_url) -> Result:
        if store is None:
            monkeypatch.delenv("WIREFRAME_STORE", raising=False)
        else:
            monkeypatch.setenv("WIREFRAME_STORE", store)
        return run_in_process(capsys, *args)

    return run


@pytest.fixture
def seeded(store_url: str) -> Iterator[dict[str, int]]:
    """A store where the app ran: completed, failed, parent with child and checkpoint, pending."""
    import cli_app

    from wireframe import Scheduler, Service

    async def seed() -> dict[str, int]:
        scheduler = Scheduler(
            store_url, domains=[cli_app.demo], poll_interval=0.05, max_concurrency=4
        )
        service = Service("seed", handle_signals=False, graceful_timeout=5)
        service.add_task(scheduler)
        ids: dict[str, int] = {}
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(service.run)
                ids["ok"] = (await scheduler.submit({"n": 1}, type="demo::ok")).id
                ids["boom"] = (await scheduler.submit({"why": "bad input"}, type="demo::boom")).id
                ids["parent"] = (await scheduler.submit({}, type="demo::parent")).id
                await scheduler.result(ids["ok"], timeout=WAIT)
                await scheduler.result(ids["parent"], timeout=WAIT)
                while (await scheduler.get(ids["boom"])).state.value != "failed":  # type: ignore[union-attr]
                    await anyio.sleep(0.02)
                children = await scheduler.store.list_jobs(parent_id=ids["parent"])
                ids["child"] = children[0].id
                service.stop()
        # a pending job of a type no worker here runs, and one blocked on it
        async with Scheduler(store_url, domains=[cli_app.demo], worker=False) as client:
            from wireframe.store import NewJob

            (other,) = await client.store.submit([NewJob("other::thing", "other", "{}")])
            ids["pending"] = other.id
            (blocked,) = await client.store.submit(
                [NewJob("other::after", "other", "{}", depends_on=(other.id,))]
            )
            ids["blocked"] = blocked.id
        return ids

    yield anyio.run(seed)
