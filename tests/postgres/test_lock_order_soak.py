"""Row locks in one global order: a soak of job trees on four worker processes logs no deadlock.

A private cluster (`log_lock_waits` on, `deadlock_timeout` 1 s) runs four `python -m wireframe
worker` processes (claim_ttl 3 s) on trees of jobs whose ends cascade: children counted out of
their parents, fail_fast failures cancelling siblings, retries, durable steps, sleeps, joins and
events, and jobs that depend on whole trees. The store retries a deadlock silently, so the
server's log is where one shows; each would cost a second of `deadlock_timeout`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from soak_app import Leaf, Tree, Waiter, soak

from wireframe import Scheduler
from wireframe.store import PostgresStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from private_pg import PrivateCluster, private_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCHEMA = "soak"
WORKERS = 4
SUBMIT_FOR = 15.0  # seconds of submissions; the jobs then drain


def start_worker(
    cluster: PrivateCluster, url: str, name: str, tmp: Path
) -> subprocess.Popen[bytes]:
    """`python -m wireframe worker` on the soak app."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
        "WF_RECORD_DSN": cluster.dsn,
        "WF_SCHEMA": SCHEMA,
        "WF_CLAIM_TTL": "3",
        "WF_CONCURRENCY": "8",
    }
    args = ["--store", url, "--app", "soak_app:scheduler", "--worker-id", name]
    args += ["--graceful-timeout", "2", "--log-level", "warning"]
    return subprocess.Popen(
        [sys.executable, "-m", "wireframe", "worker", *args],
        env=env,
        stdout=(tmp / f"{name}.log").open("wb"),
        stderr=subprocess.STDOUT,
        cwd=REPO,
    )


async def submit_waves(url: str) -> list[int]:
    """Submit a wave of trees, dependents and waiters every 0.25 s for SUBMIT_FOR seconds."""
    client = Scheduler(PostgresStore(url), domains=[soak], worker=False)
    await client.open()
    ids: list[int] = []
    try:
        deadline = time.monotonic() + SUBMIT_FOR
        wave = 0
        while time.monotonic() < deadline:
            wave += 1
            ids.extend(await submit_wave(client, wave))
            await anyio.sleep(0.25)
    finally:
        await client.close()
    return ids


async def submit_wave(client: Scheduler, wave: int) -> list[int]:
    """Three trees (one failing, one durable), then jobs that depend on or wait for them."""
    n = wave * 10
    trees = [
        await client.submit(Tree(n, kids=4, depth=1)),
        await client.submit(Tree(n + 1, kids=3, depth=1, failing=True)),
        await client.submit(Tree(n + 2, kids=3, depth=1, durable=True)),
    ]
    ids = [t.id for t in trees]
    policies = ["cancel", "fail", "ignore"]
    for i, tree in enumerate(trees):
        dep = await client.submit(
            Leaf(n + i, flaky=True),
            depends_on=[tree.id],
            on_dependency_failure=policies[(i + wave) % 3],
        )
        ids.append(dep.id)
    for i in (0, 2):  # the trees that do not fail emit their event
        ids.append((await client.submit(Waiter(n + i))).id)
    ids.extend(o.id for o in await client.submit_many([Leaf(n + i, sleep=0.01) for i in range(4)]))
    return ids


def reports(log: str, lines: int = 12, most: int = 4) -> str:
    """The first deadlock and lock-wait reports of the server's log, with the lines after each."""
    out: list[str] = []
    text = log.splitlines()
    for i, line in enumerate(text):
        if "deadlock detected" in line or "still waiting for" in line:
            out.extend(text[i : i + lines])
            most -= 1
            if not most:
                break
    return "\n".join(out)


def sql(cluster: PrivateCluster, query: str) -> list[tuple[Any, ...]]:
    """Run one statement in the soak's schema; its rows."""
    import psycopg

    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {SCHEMA}")
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` every 0.1 s; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def test_job_trees_on_four_workers_take_row_locks_without_deadlock(tmp_path: Path) -> None:
    with private_cluster() as cluster:
        sql(cluster, f"CREATE SCHEMA {SCHEMA}")
        sql(cluster, "CREATE TABLE runs (job_id BIGINT, attempt INT, worker TEXT)")
        url = f"{cluster.dsn}?schema={SCHEMA}"
        anyio.run(PostgresStore(url).open)  # migrate once, before the workers race to
        procs = [start_worker(cluster, url, f"w{i}", tmp_path) for i in range(WORKERS)]
        try:
            submitted = len(anyio.run(submit_waves, url))
            active = "SELECT count(*) FROM jobs WHERE finished_at IS NULL"
            wait_for(lambda: sql(cluster, active)[0][0] == 0, 60, "every job to end")
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        logs = "\n".join(p.read_text()[-2000:] for p in sorted(tmp_path.glob("w*.log")))
        deadlocks, waits = cluster.deadlocks(), cluster.lock_waits()
        assert not deadlocks and not waits, (
            f"{len(deadlocks)} deadlocks, {len(waits)} lock waits over 1 s:\n"
            + reports(cluster.server_log())
        )
        # Every job ended, and none ran to its end twice (a lease lost by a live worker).
        states = Counter(state for (state,) in sql(cluster, "SELECT state FROM jobs"))
        assert set(states) <= {"completed", "failed", "cancelled", "dependency_failed"}, states
        assert sum(states.values()) > submitted and states["completed"] > 500, states
        runs = Counter(job for (job,) in sql(cluster, "SELECT job_id FROM runs"))
        twice = sorted(job for job, count in runs.items() if count > 1)
        assert not twice, (twice[:20], logs)
        done = {job for (job,) in sql(cluster, "SELECT id FROM jobs WHERE state = 'completed'")}
        assert done <= set(runs), sorted(done - set(runs))[:20]
        lost = sql(
            cluster,
            "SELECT job_id, attempt, worker_id, error FROM attempts "
            "WHERE outcome = 'lease_expired'",
        )
        assert not lost, (lost[:20], logs)
