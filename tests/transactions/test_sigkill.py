"""SIGKILL between a handler's write and its commit: neither the write nor the completion
survives, and the re-run (in another process, once the lease expires) writes once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
import txn_crash_app
from txn_support import Db

from wireframe import JobState, Scheduler

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
APP = Path(txn_crash_app.__file__)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the workers are separate processes; one backend is enough here


class Workers:
    """Worker processes on the test's database, killed at the end."""

    def __init__(self, db: Db, marks: Path) -> None:
        self.db, self.marks = db, marks
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(APP), self.db.url, self.db.table, str(self.marks)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc


@pytest.fixture
def workers(db: Db, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(db, tmp_path)
    yield w
    for proc in w.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def until_hanging(workers: Workers, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while not (workers.marks / "hanging").exists():
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {proc.stderr.read()!r}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the handler never reached its write"
        await anyio.sleep(0.02)


@pytest.mark.parametrize(
    ("job_type", "result", "before", "after"),
    [
        ("txcrash::record", "recorded", [], [(40, "recorded")]),
        ("txcrash::stepped", "stepped", [(40, "one")], [(40, "one"), (41, "two")]),
    ],
)
async def test_sigkill_inside_the_transaction(
    db: Db,
    workers: Workers,
    job_type: str,
    result: str,
    before: list[tuple[int, str]],
    after: list[tuple[int, str]],
) -> None:
    async with Scheduler(db.url, domains=[txn_crash_app.crash], worker=False) as client:
        handle = await client.submit({"id": 40}, type=job_type)
        first = workers.start(HANG="1")
        await until_hanging(workers, first)
        first.kill()  # SIGKILL: between the handler's write and its commit
        first.wait(timeout=10)
        assert db.rows() == before  # the write died with its transaction
        job = await client.get(handle.id)
        assert job is not None and job.state is JobState.RUNNING  # and so did the completion
        second = workers.start()
        assert await client.result(handle.id, timeout=60) == result
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
        attempts = await client.store.attempts(handle.id)
    assert db.rows() == after  # written once, by the re-run
    assert [a.outcome for a in attempts] == ["lease_expired", "completed"]
