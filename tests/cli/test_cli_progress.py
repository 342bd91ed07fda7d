"""Live progress across processes: what a handler reports with `ctx.progress` in a worker
process reaches the store within about a second (not at the next heartbeat, 15 s away with a
claim_ttl of 300 s), so another process (`wireframe top`, another store connection) sees it."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio.from_thread
from cli_support import WAIT, Cli, Worker, wait_until

from wireframe import JobState
from wireframe.store import JobRecord, NewJob, Store, store_from_url

LIVE = 3.0
"""Seconds within which a progress change must be seen in the store (the beat comes after
1 s; the rest is slack for a loaded machine; the regular heartbeat is 15 s away)."""


class Watcher:
    """The test's own store connection, kept open, read from synchronous code."""

    def __init__(self, portal: anyio.from_thread.BlockingPortal, store: Store) -> None:
        self.portal = portal
        self.store = store

    def get(self, job_id: int) -> JobRecord:
        job = self.portal.call(self.store.get, job_id)
        assert job is not None
        return job

    def submit(self, folder: Path) -> int:
        payload = json.dumps({"folder": str(folder)})
        (result,) = self.portal.call(
            self.store.submit, [NewJob("steps::advance", "steps", payload)]
        )
        return result.id


@contextmanager
def watcher(url: str) -> Iterator[Watcher]:
    with anyio.from_thread.start_blocking_portal() as portal:
        store = store_from_url(url)
        portal.call(store.open)
        try:
            yield Watcher(portal, store)
        finally:
            portal.call(store.close)


def seen_live(watch: Watcher, job_id: int, progress: tuple[float, str]) -> None:
    """Wait until the store shows `progress` for the job; fail after LIVE seconds."""

    def shown() -> bool:
        job = watch.get(job_id)
        return (job.progress, job.progress_message) == progress

    wait_until(shown, f"progress {progress} in the store", timeout=LIVE)


def test_progress_in_a_worker_process_is_seen_live_by_another_process(
    cli: Cli, store_url: str, tmp_path: Path
) -> None:
    assert cli("migrate").code == 0
    worker = Worker(store_url, "--app", "progress_app:scheduler", "--worker-id", "w-live")
    try:
        with watcher(store_url) as watch:
            job_id = watch.submit(tmp_path)
            wait_until(lambda: watch.get(job_id).state is JobState.RUNNING, "the job to start")
            seen_live(watch, job_id, (0.25, "a quarter"))
            (tmp_path / "next").write_text("go")
            seen_live(watch, job_id, (0.75, "three quarters"))

            top = cli("top", "--once", "--json").json()
            (running,) = top["running"]
            assert (running["id"], running["progress"]) == (job_id, 0.75)
            assert running["message"] == "three quarters"

            (tmp_path / "release").write_text("go")
            wait_until(lambda: watch.get(job_id).state is JobState.COMPLETED, "the job to end")
        worker.popen.send_signal(signal.SIGTERM)
        assert worker.popen.wait(timeout=WAIT) == 0
    finally:
        worker.kill()
