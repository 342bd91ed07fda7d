"""Workers that die: `python -m wireframe worker` processes SIGKILLed while they run a job.

A lost worker spends the job's reclaim budget (`max_reclaims`), not its retry policy's
attempts: under the default policy (one attempt) the job runs again on another worker, even
past its ttl; a job that kills its worker every time ends failed once its reclaims run out.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from cli_support import WAIT, Workers, in_store, wait_until

from wireframe.store import JobState, NewJob, Store, Submitted

pytestmark = pytest.mark.slow


@pytest.fixture
def workers(tmp_path: Path) -> Any:
    w = Workers(f"sqlite:///{tmp_path / 'jobs.db'}", "reclaim_app:scheduler")
    yield w
    w.stop_all()


def submit(url: str, type: str, payload: str, **kw: Any) -> int:
    async def go(store: Store) -> int:
        [result] = await store.submit([NewJob(type, "lost", payload, **kw)])
        assert isinstance(result, Submitted)
        return result.id

    return int(in_store(url, go))


def get(url: str, job_id: int) -> Any:
    async def go(store: Store) -> Any:
        return await store.get(job_id), await store.attempts(job_id)

    return in_store(url, go)


def ended(url: str, job_id: int) -> Any:
    job, attempts = get(url, job_id)
    return (job, attempts) if job.terminal else None


def test_a_sigkilled_worker_s_job_runs_again_on_another_worker_past_its_ttl(
    workers: Workers, tmp_path: Path
) -> None:
    payload = f'{{"dir": "{tmp_path}"}}'
    first = workers.start()
    ping = submit(workers.url, "lost::ping", payload)
    wait_until(lambda: ended(workers.url, ping), "the first worker to run a job")
    ttl = 2.0
    job_id = submit(workers.url, "lost::hang_once", payload, expires_at=time.time() + ttl)
    wait_until(lambda: (tmp_path / "hang_once-1").exists(), "the first attempt to start")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=WAIT)
    wait_until(lambda: time.time() > ttl + get(workers.url, job_id)[0].created_at, "the ttl")
    second = workers.start()
    job, attempts = wait_until(lambda: ended(workers.url, job_id), "the job to end")
    assert (job.state, job.result) == (JobState.COMPLETED, '"done on attempt 2"'), job
    assert (job.attempt, job.reclaims, job.attempts_spent) == (2, 1, 1)
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "lease_expired"), (2, "completed")]
    assert attempts[0].error.startswith(f"lease of worker {attempts[0].worker_id} expired")
    assert attempts[0].worker_id.endswith(f"-{first.pid}")
    assert attempts[1].worker_id.endswith(f"-{second.pid}")


def test_a_job_that_kills_its_worker_every_time_fails_after_max_reclaims(
    workers: Workers, tmp_path: Path
) -> None:
    payload = f'{{"dir": "{tmp_path}"}}'
    job_id = submit(workers.url, "lost::kill_worker", payload, max_reclaims=1)
    killed: list[int] = []
    for _ in range(3):  # two runs that kill their worker, then one that gives up on the job
        proc = workers.start()
        deadline = time.monotonic() + WAIT
        while proc.poll() is None and not get(workers.url, job_id)[0].terminal:
            assert time.monotonic() < deadline, "neither the worker died nor the job ended"
            time.sleep(0.05)
        if proc.poll() is not None:
            assert proc.returncode == -signal.SIGKILL
            killed.append(proc.pid)
        else:
            break
    job, attempts = wait_until(lambda: ended(workers.url, job_id), "the job to end")
    assert len(killed) == 2 and sorted(p.name for p in tmp_path.glob("kill_worker-*")) == [
        "kill_worker-1",
        "kill_worker-2",
    ]
    assert job.state is JobState.FAILED
    last = attempts[-1].worker_id
    assert job.error == (
        f"worker lost 2 times (last: lease of worker {last} expired); gave up after max_reclaims=1"
    )
    assert [(a.attempt, a.outcome) for a in attempts] == [
        (1, "lease_expired"),
        (2, "lease_expired"),
    ]
    assert [a.worker_id.rsplit("-", 1)[1] for a in attempts] == [str(p) for p in killed]
