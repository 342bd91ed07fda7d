"""Rate limits across worker processes: 4 on PostgreSQL, 3 on one SQLite file. Together they
never start more jobs than the limit allows in any window, and keep up with it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from rate_app import Tick, paced

from wireframe import JobState, Scheduler

from cluster_support import HERE, REPO, Cluster, wait_until

N = 150
COUNT, BURST = 50, 5  # rate_app's Rate(50, per=1.0, burst=5)


def start_workers(url: str, n: int, tmp: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    procs = []
    for i in range(n):
        log = (tmp / f"r{i}.log").open("wb")
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "wireframe", "worker", "--store", url, "--app",
                 "rate_app:scheduler", "--worker-id", f"r{i}", "--graceful-timeout", "2",
                 "--log-level", "warning"],
                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
            )
        )  # fmt: skip
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def client(store: object) -> Scheduler:
    return Scheduler(store, domains=[paced], worker=False)  # type: ignore[arg-type]


def submit(store: object) -> None:
    async def go() -> None:
        async with client(store) as s:
            await s.submit_many([Tick(i) for i in range(N)])

    anyio.run(go)


def completed(store: object) -> int:
    async def go() -> int:
        async with client(store) as s:
            counts = await s.store.counts()
        return sum(n for (_, _, state), n in counts.items() if state is JobState.COMPLETED)

    return anyio.run(go)


def starts(store: object) -> tuple[int, list[float], set[str]]:
    """(completed jobs, sorted start times, workers that ran them)."""

    async def go() -> tuple[int, list[float], set[str]]:
        async with client(store) as s:
            jobs = await s.store.list_jobs(limit=10 * N)
            done = [j for j in jobs if j.state is JobState.COMPLETED]
            attempts = [await s.store.attempts(j.id) for j in done]
        times = sorted(j.started_at for j in done if j.started_at is not None)
        ran_on = {a.worker_id for rows in attempts for a in rows if a.worker_id is not None}
        return len(done), times, ran_on

    return anyio.run(go)


def most_in_a_window(times: list[float], window: float) -> int:
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > window:
            lo += 1
        most = max(most, hi - lo + 1)
    return most


def check_pace(times: list[float]) -> None:
    """Upper bounds strictly (what GCRA allows), the lower one loosely (a loaded machine)."""
    assert len(times) == N
    for window in (0.25, 0.5, 1.0):
        assert most_in_a_window(times, window) <= COUNT * window + BURST, window
    achieved = (N - BURST) / (times[-1] - times[0])
    assert achieved <= COUNT * 1.1, achieved
    assert achieved >= COUNT * 0.5, achieved


def run_workers(store: object, url: str, workers: int, tmp: Path) -> None:
    submit(store)
    procs = start_workers(url, workers, tmp)
    try:
        wait_until(lambda: completed(store) == N, 60, "every job completed")
    finally:
        stop(procs)
    _, times, ran_on = starts(store)
    assert len(ran_on) >= 2, ran_on  # the limit really was shared
    logs = "\n".join(p.read_text()[-2000:] for p in tmp.glob("r*.log"))
    assert "Traceback" not in logs, logs
    check_pace(times)


@pytest.fixture
def pg_url(cluster: Cluster) -> Iterator[str]:
    yield cluster.url


def test_four_postgres_workers_together_keep_to_the_rate(pg_url: str, tmp_path: Path) -> None:
    run_workers(pg_url, pg_url, 4, tmp_path)


def test_three_workers_on_one_sqlite_file_keep_to_the_rate(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    run_workers(url, url, 3, tmp_path)
