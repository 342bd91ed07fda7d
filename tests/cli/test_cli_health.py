"""`wireframe worker --health-port`: health answers through the drain; a taken port fails early."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import HERE, WAIT, Cli, Worker, cli_env, in_store, wait_until

from wireframe.store import JobState, Store

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)]


async def _state(store: Store, job_id: int) -> JobState | None:
    job = await store.get(job_id)
    return None if job is None else job.state


async def _job_types(store: Store) -> list[object]:
    return list(await store.job_types())


async def _progress(store: Store, job_id: int) -> float | None:
    job = await store.get(job_id)
    return None if job is None else job.progress


def get(port: int, path: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode()
    finally:
        conn.close()


def test_a_draining_worker_answers_health_ready_and_metrics_until_it_exits(
    cli: Cli, store_url: str, tmp_path: Path
) -> None:
    assert cli("migrate").code == 0
    worker = Worker(store_url, "--app", "cli_app:scheduler", "--health-port", "0")
    try:
        port = int(worker.record("health server listening on")["message"].rsplit(":", 1)[1])
        release = tmp_path / "release"
        payload = json.dumps({"release": str(release)})
        wait_until(lambda: in_store(store_url, _job_types), "the worker to record its job types")
        slow = cli("submit", "demo::slow", "--payload", payload, "--json").json()["id"]
        wait_until(lambda: in_store(store_url, _progress, slow) == 0.5, "the job to run")
        assert get(port, "/ready")[0] == 200

        worker.popen.send_signal(signal.SIGTERM)
        worker.record("stopping: received SIGTERM")
        for _ in range(3):  # the job drains: the process stays, and so does its health server
            status, body = get(port, "/ready")
            assert status == 503 and json.loads(body)["phase"] == "stopping", body
            assert json.loads(body)["stop_reason"] == "received SIGTERM"
            status, body = get(port, "/health")
            assert status == 200 and json.loads(body)["phase"] == "stopping"
            status, metrics = get(port, "/metrics")
            assert status == 200
            assert 'wireframe_service_ready{service="worker"} 0' in metrics
            assert "wireframe_worker_running_jobs 1" in metrics
        assert worker.popen.poll() is None

        release.write_text("go")
        while worker.popen.poll() is None:  # answered until the very end of the drain
            try:
                assert get(port, "/health")[0] == 200
            except ConnectionError:  # refused, or cut off by the server's close
                break
        assert in_store(store_url, _state, slow) is JobState.COMPLETED  # before it closed
        assert worker.popen.wait(timeout=WAIT) == 0
        worker.lines.put("")
        summary = worker.record("stopped cleanly")
    finally:
        worker.kill()
    assert all(r["service"] == "worker" for r in worker.records()), worker.seen
    assert summary["stop_reason"] == "received SIGTERM"
    assert summary["task_counts"] == {"finished": 2}
    assert "\n" not in summary["message"]


def test_a_taken_health_port_fails_the_worker_before_it_claims_a_job(
    cli: Cli, store_url: str
) -> None:
    assert cli("migrate").code == 0
    job = cli("submit", "demo::ok", "--app", "cli_app:scheduler", "--json").json()["id"]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["worker", "--store", store_url, "--app", "cli_app:scheduler"]
        proc = subprocess.run(
            [sys.executable, "-m", "wireframe", *args, "--health-port", str(port)],
            capture_output=True,
            text=True,
            env=cli_env(None),
            cwd=HERE,
            timeout=WAIT,
        )
    assert proc.returncode == 1, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines()]
    summary = records[-1]
    assert summary["message"] == (
        "service 'worker' failed: unconstrained 'health' failed: OSError(98, "
        f"'health server cannot listen on 127.0.0.1:{port}: Address already in use')"
    )
    assert summary["task_counts"] == {"failed": 1, "skipped": 1}  # the scheduler never started
    assert in_store(store_url, _state, job) is JobState.PENDING
