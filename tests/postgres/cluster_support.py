"""Worker processes started with `python -m wireframe worker` on one test's PostgreSQL schema."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "store"))

from pg_support import pg_dsn  # noqa: E402


class Cluster:
    """One test's schema, its store URL, and the worker processes it started."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self.app_name = schema
        dsn = pg_dsn()
        sep = "&" if "?" in dsn else "?"
        self.url = f"{dsn}{sep}schema={schema}&application_name={schema}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(
        self, name: str, *args: str, tmp: Path, store: str | None = None, **env: Any
    ) -> subprocess.Popen[bytes]:
        """Start `python -m wireframe worker` named `name`."""
        full_env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
            "WF_RECORD_DSN": pg_dsn(),
            "WF_SCHEMA": self.schema,
            **{k: str(v) for k, v in env.items()},
        }
        log = tmp / f"{name}.log"
        self.logs[name] = log
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wireframe",
                "worker",
                "--store",
                store or self.url,
                "--app",
                "pg_app:scheduler",
                "--worker-id",
                name,
                "--graceful-timeout",
                "2",
                "--log-level",
                "warning",
                *args,
            ],
            env=full_env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        self.procs[name] = proc
        return proc

    def kill(self, name: str) -> None:
        """SIGKILL one worker."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def stop_all(self) -> None:
        """Stop every worker still running (SIGTERM, then SIGKILL)."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)

    def output(self) -> str:
        """Every worker's log, for assertion messages."""
        return "\n".join(f"--- {n}\n{p.read_text()[-3000:]}" for n, p in self.logs.items())

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in the test's schema; return its rows."""
        import psycopg

        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            conn.execute(f"SET search_path TO {self.schema}")
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []


def wait_until(
    condition: Callable[[], bool], timeout: float, what: str, cluster: Cluster | None = None
) -> None:
    """Check `condition` every 20 ms until it holds; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            extra = f"\n{cluster.output()}" if cluster else ""
            pytest.fail(f"timed out after {timeout} s waiting for {what}{extra}")
        time.sleep(0.02)
