"""A `wireframe worker` stops when asked even while its PostgreSQL server is down: SIGTERM ends
it within the graceful timeout plus a small margin, with one clear line and a non-zero exit (the
jobs it held could not be handed back: their leases expire instead); a second signal ends it at
once. The server is a private cluster of the test's own, stopped under the worker's feet."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from pg_app import Hold, t

from wireframe import Scheduler
from wireframe.store import PostgresStore

from cluster_support import Cluster, wait_until
from pg_support import new_schema_name
from private_pg import PrivateCluster, private_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def pg() -> Iterator[PrivateCluster]:
    """A private cluster of this test's own."""
    with private_cluster() as cluster:
        yield cluster


async def _submit(url: str) -> None:
    async with Scheduler(PostgresStore(url), domains=[t], worker=False) as client:
        await client.submit(Hold(1))


def _running_worker(
    pg: PrivateCluster, tmp: Path, *args: str
) -> tuple[Cluster, subprocess.Popen[bytes]]:
    """A worker holding one job, its server just stopped."""
    schema = new_schema_name("wfd")
    url = f"{pg.dsn}?schema={schema}"
    anyio.run(_submit, url)
    record = tmp / "runs.txt"
    cluster = Cluster(schema)
    worker = cluster.start(
        "w", *args, tmp=tmp, store=url, WF_RECORD_FILE=record, WF_CLAIM_TTL=30.0, WF_POLL=0.2
    )
    wait_until(lambda: record.exists() and record.read_text(), 30, "the job to start", cluster)
    pg.stop("immediate")
    return cluster, worker


def _stop(worker: subprocess.Popen[bytes], *signals: signal.Signals) -> tuple[int, float]:
    started = time.monotonic()
    for i, sig in enumerate(signals):
        if i:
            time.sleep(0.3)
        worker.send_signal(sig)
    code = worker.wait(timeout=60)
    return code, time.monotonic() - started


def test_sigterm_stops_a_worker_whose_database_is_down(pg: PrivateCluster, tmp_path: Path) -> None:
    cluster, worker = _running_worker(pg, tmp_path, "--graceful-timeout", "3")
    try:
        code, took = _stop(worker, signal.SIGTERM)
    finally:
        cluster.stop_all()
    output = cluster.output()
    assert code != 0, output
    assert took < 3 + 2.0, (took, output)
    assert "did not stop within" not in output  # it gave up before the service's deadline
    said = [line for line in output.splitlines() if "could not hand back" in line]
    assert said and "1 job" in said[0] and "claim_ttl 30 s" in said[0], output


def test_a_second_signal_stops_it_at_once(pg: PrivateCluster, tmp_path: Path) -> None:
    cluster, worker = _running_worker(pg, tmp_path, "--graceful-timeout", "60")
    try:
        code, took = _stop(worker, signal.SIGTERM, signal.SIGTERM)
    finally:
        cluster.stop_all()
    assert code != 0, cluster.output()
    assert took < 3.0, (took, cluster.output())
