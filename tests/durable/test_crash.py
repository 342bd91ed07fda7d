"""Durable jobs survive SIGKILL: a new worker process finishes them, side effects exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import crash_app
import pytest

from wireframe import JobState, Scheduler

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
APP = Path(crash_app.__file__)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the workers are separate processes; one backend is enough here


class Workers:
    """Starts worker processes on one SQLite file and cleans them up."""

    def __init__(self, db: Path, effects: Path) -> None:
        self.db, self.effects = db, effects
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, str(APP), str(self.db), str(self.effects)],
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def effects_log(self) -> list[str]:
        path = self.effects / "effects.log"
        return path.read_text().split() if path.exists() else []


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    w = Workers(tmp_path / "jobs.db", tmp_path)
    yield w
    for proc in w.procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


async def until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await anyio.sleep(0.02)


async def state_of(client: Scheduler, job_id: int) -> JobState | None:
    job = await client.get(job_id)
    return job.state if job else None


async def wait_state(client: Scheduler, job_id: int, state: JobState) -> None:
    deadline = time.monotonic() + 30
    while await state_of(client, job_id) is not state:
        assert time.monotonic() < deadline, f"job {job_id} never became {state}"
        await anyio.sleep(0.02)


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=30)


async def test_sigkill_between_steps_then_a_new_process_finishes(workers: Workers) -> None:
    async with Scheduler(
        f"sqlite:///{workers.db}", domains=[crash_app.flow], worker=False
    ) as client:
        out = await client.submit({}, type="crash::multi")
        first = workers.start(HANG="steps")
        await until(lambda: (workers.effects / "hanging").exists(), "the job to reach its hang")
        first.kill()
        first.wait(timeout=10)
        second = workers.start()
        assert await client.result(out.id, timeout=60) == "done"
        assert stop(second) == 0
        attempts = await client.store.attempts(out.id)
    assert workers.effects_log() == ["one", "two", "three"]
    assert attempts[0].outcome == "lease_expired"


async def test_sigkill_during_a_durable_sleep(workers: Workers) -> None:
    async with Scheduler(
        f"sqlite:///{workers.db}", domains=[crash_app.flow], worker=False
    ) as client:
        first = workers.start()
        out = await client.submit({"seconds": 1.0}, type="crash::sleepy")
        await wait_state(client, out.id, JobState.SUSPENDED)
        first.kill()
        first.wait(timeout=10)
        second = workers.start()
        assert await client.result(out.id, timeout=60) == "slept"
        assert stop(second) == 0
    assert workers.effects_log() == ["before", "after"]


async def test_sigkill_during_wait_event_then_emit_from_another_process(
    workers: Workers,
) -> None:
    async with Scheduler(
        f"sqlite:///{workers.db}", domains=[crash_app.flow], worker=False
    ) as client:
        first = workers.start()
        out = await client.submit({"event": "shipped:7"}, type="crash::waiter")
        await wait_state(client, out.id, JobState.SUSPENDED)
        first.kill()
        first.wait(timeout=10)
        assert await client.emit_event("shipped:7", {"tracking": "ABC"}) is True
        second = workers.start()
        assert await client.result(out.id, timeout=60) == {"tracking": "ABC"}
        assert stop(second) == 0
    assert workers.effects_log() == ["before", "after"]
