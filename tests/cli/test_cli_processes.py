"""Long-running commands as real processes: worker (with health and JSON logs), top, run."""

from __future__ import annotations

import http.client
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import cli_app
import pytest
from cli_support import (
    HERE,
    WAIT,
    Cli,
    Worker,
    assert_one_line_error,
    cli_env,
    in_store,
    wait_until,
)

from wireframe.store import JobState, Store

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


async def _state(store: Store, job_id: int) -> JobState | None:
    job = await store.get(job_id)
    return None if job is None else job.state


async def _job_types(store: Store) -> list[object]:
    return list(await store.job_types())


async def _progress(store: Store, job_id: int) -> float | None:
    job = await store.get(job_id)
    return None if job is None else job.progress


def run_in_pty(args: list[str], until: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the command on a pseudo-terminal; return its exit code and its screen text."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wireframe", *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "140", "LINES": "40"},
        cwd=HERE,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + WAIT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=WAIT)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    screen = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    for text in until:
        assert text in screen, f"{text!r} not on the screen:\n{screen}"
    return code, screen


def test_worker_runs_jobs_serves_health_logs_json_and_stops_on_sigterm(
    cli: Cli, store_url: str, tmp_path: Path
) -> None:
    assert cli("migrate").code == 0
    worker = Worker(
        store_url,
        "--app",
        "cli_app:scheduler",
        "--concurrency",
        "2",
        "--worker-id",
        "w-1",
        "--health-port",
        "0",
    )
    try:
        listening = worker.record("health server listening on")
        port = int(listening["message"].rsplit(":", 1)[1])
        release = tmp_path / "release"
        # The worker records its job types when it starts; `submit` checks against them.
        wait_until(lambda: in_store(store_url, _job_types), "the job types recorded")
        types = cli("types", "--json").json()
        assert {t["type"] for t in types} == {f"demo::{n}" for n in cli_app.demo.jobs}
        assert {t["recorded_by"] for t in types} == {"w-1"}
        ok = cli("submit", "demo::ok", "--payload", '{"n": 7}', "--json").json()["id"]
        boom = cli("submit", "demo::boom", "--payload", '{"why": "x"}', "--json").json()["id"]
        slow = cli(
            "submit", "demo::slow", "--payload", json.dumps({"release": str(release)}), "--json"
        ).json()["id"]
        wait_until(lambda: in_store(store_url, _state, ok) is JobState.COMPLETED, "ok to complete")
        wait_until(lambda: in_store(store_url, _state, boom) is JobState.FAILED, "boom to fail")
        wait_until(lambda: in_store(store_url, _progress, slow) == 0.5, "slow to report progress")

        # top, in a terminal, against the store the worker is using
        code, screen = run_in_pty(
            ["top", "--interval", "0.2s", "--iterations", "3"],
            until=["refresh 3", "demo::slow", "halfway there", "50%", "w-1", "completed"],
            env=cli_env(store_url),
        )
        assert code == 0, screen
        assert "Traceback" not in screen
        once = cli("top", "--once", "--json").json()
        assert once["by_domain"]["demo"] == {"completed": 1, "failed": 1, "running": 1}
        assert [j["id"] for j in once["running"]] == [slow]

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/metrics")
        metrics = conn.getresponse().read().decode()
        conn.request("GET", "/ready")
        assert conn.getresponse().status == 200
        conn.close()
        assert 'wireframe_jobs_completed_total{domain="demo",type="demo::ok"} 1' in metrics
        failed = 'wireframe_jobs_failed_total{domain="demo",type="demo::boom",will_retry="false"} 1'
        assert failed in metrics
        assert 'wireframe_jobs{domain="demo",type="demo::slow",state="running"} 1' in metrics

        release.write_text("go")
        wait_until(lambda: in_store(store_url, _state, slow) is JobState.COMPLETED, "slow done")
        worker.popen.send_signal(signal.SIGTERM)
        assert worker.popen.wait(timeout=WAIT) == 0
        worker.lines.put("")  # flush the reader's last lines
        wait_until(
            lambda: any("stopped cleanly" in r["message"] for r in worker.records()),
            "the clean-stop record",
        )
    finally:
        worker.kill()

    records = worker.records()
    for record in records:
        assert {"time", "level", "logger", "message", "service", "task", "job_id"} <= set(record)
    failed = next(r for r in records if f"job {boom} (demo::boom) attempt 1 failed" in r["message"])
    assert failed["job_id"] == boom and failed["task"] == "scheduler"
    assert failed["service"] == "worker"
    assert any(r["task"] == "health" for r in records)


def test_worker_usage_errors(cli: Cli, store_url: str) -> None:
    assert_one_line_error(cli("worker", "--app", "no_such_module:x"), 2, "'no_such_module'")
    assert_one_line_error(cli("worker", "--app", "cli_app:nothing"), 2, "'nothing'")
    assert_one_line_error(cli("worker", "--app", "cli_app:double"), 2, "not a Scheduler")
    assert_one_line_error(
        cli("worker", "--app", "cli_app:scheduler", "--store", "nope://"), 2, "'nope://'"
    )
    assert_one_line_error(
        cli("worker", "--app", "cli_app:scheduler", "--concurrency", "0"), 2, "--concurrency"
    )
    assert_one_line_error(cli("worker"), 2, "--app")


def test_run_a_service_from_a_file_or_a_module(cli: Cli, tmp_path: Path) -> None:
    main = tmp_path / "main.py"
    main.write_text(
        textwrap.dedent("""
        from wireframe import OneshotTask, Service, StopReceiver

        class Hello(OneshotTask):
            id = "hello"

            async def run(self, stop: StopReceiver) -> None:
                print("hello from the task", flush=True)

        class Broken(OneshotTask):
            id = "broken"

            async def run(self, stop: StopReceiver) -> None:
                raise RuntimeError("it broke")

        service = Service("hello-app").add_task(Hello())
        failing = Service("failing-app").add_task(Broken())
    """)
    )
    ok = cli("run", str(main), "--log-format", "json")
    assert ok.code == 0, ok
    assert "hello from the task" in ok.out
    messages = [json.loads(line) for line in ok.err.splitlines()]
    assert any(
        m["message"] == "oneshot 'hello' started"
        and m["task"] == "hello"
        and m["service"] == "hello-app"
        for m in messages
    )

    bad = cli("run", f"{main}:failing", "--log-format", "json")
    assert bad.code == 1, bad
    assert "it broke" in bad.err

    mod = cli("run", "main:service", "--log-format", "rich", PYTHONPATH=str(tmp_path))
    assert mod.code == 0 and "hello from the task" in mod.out, mod

    assert_one_line_error(cli("run", str(tmp_path / "absent.py")), 2, "no such file")
    assert_one_line_error(cli("run", f"{main}:nope"), 2, "'nope'")
    assert_one_line_error(cli("run", "cli_app:demo"), 2, "not a wireframe Service")
