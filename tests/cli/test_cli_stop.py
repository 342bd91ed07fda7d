"""How a `wireframe worker` process stops: a graceful stop hands back, before the graceful
timeout, the jobs it could not finish (pending again, checkpoints kept, no attempt spent); a
second signal does the same at once. Only SIGKILL leaves a lease to expire."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from cli_support import WAIT, Cli, Worker, in_store, wait_until

from wireframe.store import JobRecord, Store

pytestmark = pytest.mark.slow


async def _job(store: Store, job_id: int) -> JobRecord | None:
    return await store.get(job_id)


async def _checkpoints(store: Store, job_id: int) -> int:
    return len(await store.checkpoints(job_id))


def _start_stuck(cli: Cli, store_url: str, tmp_path: Path, *args: str) -> tuple[Worker, int]:
    """A worker running one `demo::stuck` job past its durable step."""
    assert cli("migrate").code == 0
    worker = Worker(store_url, "--app", "cli_app:scheduler", "--worker-id", "w-1", *args)
    payload = {"notes": str(tmp_path / "notes"), "release": str(tmp_path / "release")}
    submit = ("submit", "demo::stuck", "--app", "cli_app:scheduler")
    job_id = cli(*submit, "--payload", json.dumps(payload), "--json").json()["id"]
    wait_until(lambda: in_store(store_url, _checkpoints, job_id) == 1, "the step to be recorded")
    return worker, job_id


def _assert_handed_back(store_url: str, job_id: int) -> JobRecord:
    job = in_store(store_url, _job, job_id)
    assert job is not None
    assert job.state.value == "pending", job
    assert job.worker_id is None and job.lease_expires_at is None, job
    assert job.attempt == 1 and job.error is None, job
    assert in_store(store_url, _checkpoints, job_id) == 1
    return job


def _stop(worker: Worker, *signals: signal.Signals) -> tuple[int, float]:
    started = time.monotonic()
    for sig in signals:
        worker.popen.send_signal(sig)
        time.sleep(0.2) if len(signals) > 1 else None
    code = worker.popen.wait(timeout=WAIT)
    return code, time.monotonic() - started


def _finish_elsewhere(cli: Cli, store_url: str, tmp_path: Path, job_id: int) -> None:
    """Another worker finishes the job without running its recorded step again."""
    (tmp_path / "release").write_text("go")
    other = Worker(store_url, "--app", "cli_app:scheduler", "--worker-id", "w-2")
    try:
        wait_until(
            lambda: getattr(in_store(store_url, _job, job_id), "state", None) == "completed",
            "the job to complete on the second worker",
        )
    finally:
        other.kill()
    assert (tmp_path / "notes").read_text() == "ran\n"


def test_sigterm_hands_back_a_job_that_outlasts_the_graceful_timeout(
    cli: Cli, store_url: str, tmp_path: Path
) -> None:
    # The worker's own drain (ShutdownMode.graceful(), 20 s) is longer than the service's
    # graceful timeout: the hand-back must still come first, so the stop is clean.
    worker, job_id = _start_stuck(cli, store_url, tmp_path, "--graceful-timeout", "3")
    try:
        code, took = _stop(worker, signal.SIGTERM)
    finally:
        worker.kill()
    assert code == 0, worker.seen
    assert took < 3 + 2.0, took
    job = _assert_handed_back(store_url, job_id)
    assert job.reason is not None and "stopped" in job.reason
    _finish_elsewhere(cli, store_url, tmp_path, job_id)


def test_a_second_signal_hands_back_at_once(cli: Cli, store_url: str, tmp_path: Path) -> None:
    worker, job_id = _start_stuck(cli, store_url, tmp_path, "--graceful-timeout", "60")
    try:
        code, took = _stop(worker, signal.SIGTERM, signal.SIGTERM)
    finally:
        worker.kill()
    assert code != 0, worker.seen  # a forced stop is reported as one
    assert took < 5.0, took
    _assert_handed_back(store_url, job_id)
    _finish_elsewhere(cli, store_url, tmp_path, job_id)


def test_sigkill_leaves_the_lease_to_expire(cli: Cli, store_url: str, tmp_path: Path) -> None:
    worker, job_id = _start_stuck(cli, store_url, tmp_path)
    worker.kill()
    job: Any = in_store(store_url, _job, job_id)
    assert job.state.value == "running" and job.worker_id == "w-1"
