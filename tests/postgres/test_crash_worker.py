"""A lone `python -m wireframe worker` process rides out two crashes of its PostgreSQL server.

The server is a private cluster crashed with `pg_ctl stop -m immediate` and restarted while the
worker claims and finishes jobs: the worker keeps running, every job ends once, completed, and no
attempt runs twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import psycopg
import pytest
from pg_app import Rec, t

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


def states(pg: PrivateCluster, schema: str) -> Counter[str]:
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        return Counter(
            {s: n for s, n in conn.execute("SELECT state, count(*) FROM jobs GROUP BY 1")}
        )


def lines(path: Path) -> list[tuple[int, int]]:
    """(job id, attempt) of each run the handlers recorded."""
    if not path.exists():
        return []
    return [
        (int(a), int(b)) for a, b, *_ in (line.split() for line in path.read_text().splitlines())
    ]


async def submit(url: str, n: int) -> list[int]:
    client = Scheduler(PostgresStore(url), domains=[t], worker=False)
    await client.open()
    try:
        return [o.id for o in await client.submit_many([Rec(i, sleep=0.02) for i in range(n)])]
    finally:
        await client.close()


def test_a_lone_worker_survives_two_crash_restarts(pg: PrivateCluster, tmp_path: Path) -> None:
    schema = new_schema_name("wfw")
    url = f"{pg.dsn}?schema={schema}&application_name={schema}"
    record = tmp_path / "runs.txt"
    n = 600
    ids = anyio.run(submit, url, n)
    cluster = Cluster(schema)
    try:
        worker = cluster.start(
            "lone",
            "--reconnect-timeout",
            "60",
            tmp=tmp_path,
            store=url,
            WF_RECORD_FILE=record,
            WF_CLAIM_TTL=30.0,
            WF_POLL=0.2,
            WF_CONCURRENCY=8,
        )
        for share in (3, 2):
            wait_until(lambda s=share: len(lines(record)) >= n // s, 60, f"1/{share} run", cluster)
            pg.crash_restart()
            assert worker.poll() is None, cluster.output()
        wait_until(lambda: states(pg, schema)["completed"] == n, 60, "every job done", cluster)
        assert worker.poll() is None, cluster.output()
    finally:
        cluster.stop_all()
    assert worker.returncode == 0, cluster.output()
    runs = lines(record)
    assert len(set(runs)) == len(runs), "an attempt ran twice"
    assert {job for job, _ in runs} == set(ids)
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        conn.execute(f"SET search_path TO {schema}")
        ended = conn.execute(
            "SELECT job_id, count(*) FROM attempts WHERE outcome = 'completed' GROUP BY 1"
        ).fetchall()
    assert sorted(ended) == [(i, 1) for i in sorted(ids)]
