"""Helpers of the CLI tests (imported by conftest.py and the tests)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WAIT = 20.0  # seconds; only ever waited for in full when something is broken

STORE_KINDS = ["sqlite", "postgresql"]


def store_url_for(kind: str, tmp_path: Path) -> str:
    """A fresh, empty store of this kind (PostgreSQL: a schema the caller drops afterwards)."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    if kind == "postgresql":
        from pg_support import new_schema_name, require_pg

        return f"{require_pg()}?schema={new_schema_name('wfcli')}"
    raise NotImplementedError(f"no CLI test store for {kind!r}")


def cli_env(store: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WIREFRAME_STORE", "CLI_APP_STORE")}
    # The checkout under test, not whichever wireframe the interpreter has installed.
    path = os.pathsep.join([str(HERE), str(ROOT)])
    env.update(PYTHONUNBUFFERED="1", COLUMNS="160", PYTHONPATH=path)
    env.update(extra)
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


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> Result:
    """Run `wireframe ARGS` in this process (`wireframe.cli.main`), capturing its output."""
    from wireframe.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return Result(subprocess.CompletedProcess(list(args), code, out, err))


def in_process_cli(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, columns: int
) -> Cli:
    """`run(*args)`: the command in this process on the store `url`, `columns` wide."""
    monkeypatch.setenv("WIREFRAME_STORE", url)
    monkeypatch.setenv("COLUMNS", str(columns))
    return lambda *args: run_in_process(capsys, *args)


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


class Workers:
    """`python -m wireframe worker --app APP` processes on one store, stopped together."""

    def __init__(self, url: str, app: str) -> None:
        self.url = url
        self.app = app
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wireframe", "worker", "--app", self.app],
            env=cli_env(self.url),
            cwd=HERE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGTERM each one still running, then wait for all (killing one that hangs)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Worker:
    """`python -m wireframe worker` with its stderr (JSON log lines) read on a thread."""

    def __init__(self, store_url: str, *args: str) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "wireframe", "worker", "--store", store_url, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(None),
            cwd=HERE,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.lines.put(line)

    def records(self) -> list[dict[str, Any]]:
        while True:
            try:
                self.seen.append(self.lines.get_nowait())
            except queue.Empty:
                break
        return [json.loads(line) for line in self.seen if line.strip()]

    def record(self, text: str) -> dict[str, Any]:
        return wait_until(
            lambda: next((r for r in self.records() if text in r["message"]), None),
            f"a log record with {text!r}; seen: {self.seen}",
        )

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
