"""A worker frozen inside a store transaction (SIGSTOP) does not hold its jobs' rows for ever.

A frozen process keeps its row locks; other workers' claims skip those rows until its session
ends, and its TCP connection stays up (the kernel still answers for it). The store's sessions
carry `idle_in_transaction_session_timeout` (`idle_in_transaction_timeout`), so the server ends
the frozen session, the locks go, the leases expire, and another worker runs the jobs. Continued,
the frozen process reconnects, and its late writes are fenced off.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import psycopg
import pytest
from test_workers import done_count, runs, submit_recs

from cluster_support import HERE, Cluster, wait_until
from pg_support import pg_dsn

pytestmark = pytest.mark.slow

CLAIM_TTL = 2.0


def stopped(proc: subprocess.Popen[str]) -> bool:
    """True once the process is stopped (state T in /proc)."""
    stat = Path(f"/proc/{proc.pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] == "T"


def rows_locked(cluster: Cluster, ids: list[int]) -> bool:
    """True while another transaction holds a lock on the rows of `ids`."""
    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {cluster.schema}")
        try:
            conn.execute("SELECT id FROM jobs WHERE id = ANY(%s) FOR UPDATE NOWAIT", (ids,))
        except psycopg.errors.LockNotAvailable:
            return True
    return False


def test_a_frozen_worker_loses_its_jobs_within_a_few_claim_ttl(
    cluster: Cluster, tmp_path: Path
) -> None:
    ids = anyio.run(submit_recs, cluster, 5)
    holder = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "frozen_holder.py"),
            f"{cluster.url}&idle_in_transaction_timeout=2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        claimed = json.loads(holder.stdout.readline() or "{}").get("claimed")
        assert sorted(claimed or []) == sorted(ids), holder.stderr.read() if holder.stderr else ""
        wait_until(lambda: stopped(holder), 10, "the holder to stop itself")
        assert rows_locked(cluster, ids), "the frozen transaction holds the jobs' rows"

        started = time.monotonic()
        cluster.start("w1", tmp=tmp_path, WF_CLAIM_TTL=CLAIM_TTL, WF_POLL=0.2)
        wait_until(lambda: done_count(cluster) == len(ids), 6 * CLAIM_TTL, "the jobs run", cluster)
        assert time.monotonic() - started < 6 * CLAIM_TTL
        assert sorted((job, worker) for job, _, worker in runs(cluster)) == [
            (i, "w1") for i in sorted(ids)
        ]

        holder.send_signal(signal.SIGCONT)
        out, err = holder.communicate(timeout=30)
    finally:
        if holder.poll() is None:
            holder.send_signal(signal.SIGCONT)
            holder.kill()
            holder.wait(10)
    assert holder.returncode == 0, err
    # Continued, it reconnected; its leases were gone, so nothing it wrote took.
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [{"beats": ["lost"] * len(ids)}, {"applied": [False] * len(ids)}], err
    assert cluster.sql("SELECT DISTINCT state, result FROM jobs") == [("completed", "null")]
    assert sorted(
        cluster.sql("SELECT job_id, outcome FROM attempts WHERE outcome = 'completed'")
    ) == [(i, "completed") for i in sorted(ids)]
