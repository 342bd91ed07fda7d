"""CLI test fixtures: a real store file, the command as a subprocess, a seeded store.

Store kinds: `STORE_KINDS` lists the stores the CLI tests run against. The PostgreSQL store
plugs in here: add "postgresql" to the list and return its URL (a fresh schema per test) from
`store_url_for`; every test that takes the `store_url` fixture then runs on it too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WAIT = 20.0  # seconds; only ever waited for in full when something is broken

STORE_KINDS = ["sqlite"]


def store_url_for(kind: str, tmp_path: Path) -> str:
    """A fresh, empty store of this kind."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    raise NotImplementedError(f"no CLI test store for {kind!r} yet")


@pytest.fixture(params=STORE_KINDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL for one test."""
    return store_url_for(str(request.param), tmp_path)


def cli_env(store: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WIREFRAME_STORE", "CLI_APP_STORE")}
    env.update(PYTHONUNBUFFERED="1", COLUMNS="160", PYTHONPATH=str(HERE), **extra)
    if store is not None:
        env["WIREFRAME_STORE"] = store
    return env


class Result:
    """A finished CLI run."""

    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout: {self.out}\nstderr: {self.err}>"


Cli = Callable[..., Result]


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
def wf(
    store_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Cli:
    """The same command in this process (`wireframe.cli.main`): for the long tail of cases.

    Every command also runs as a real subprocess through `cli`; this keeps the many error
    cases fast while still going through argument parsing, the store and the error handling.
    """
    from wireframe.cli import main

    monkeypatch.setenv("COLUMNS", "160")

    def run(*args: str, store: str | None = store_url) -> Result:
        if store is None:
            monkeypatch.delenv("WIREFRAME_STORE", raising=False)
        else:
            monkeypatch.setenv("WIREFRAME_STORE", store)
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return Result(subprocess.CompletedProcess(list(args), code, out, err))

    return run


def assert_one_line_error(result: Result, code: int, *words: str) -> None:
    """Exit `code`, nothing on stdout, one line on stderr naming `words`, no traceback."""
    assert result.code == code, result
    assert result.out == "", result
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wireframe: error: "), result
    assert "Traceback" not in result.err
    for word in words:
        assert word in lines[0], result


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll `check` until it returns something truthy (fail after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def in_store(url: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run `await fn(store, *args)` on an opened store (the test's own connection)."""
    from wireframe.store import store_from_url

    async def go() -> Any:
        store = store_from_url(url)
        await store.open()
        try:
            return await fn(store, *args)
        finally:
            await store.close()

    return anyio.run(go)


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
