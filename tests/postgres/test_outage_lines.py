"""What an operator sees when PostgreSQL goes away and comes back, and when it refuses the store.

A private cluster of this module's own (it is stopped under a worker's feet, and it checks
passwords for one role). A `wireframe worker` process logs exactly one WARNING when it loses
the server and one INFO when it has it back, naming the service and task, with nothing from
the connection pool; a wrong password is one line from the command at once, and a password
that stops working fails the store's operations at once instead of retrying as if the server
were down.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from pg_app import Hold, t

from wireframe import Scheduler
from wireframe.store import PostgresStore, StoreError

from cluster_support import REPO, Cluster, wait_until
from pg_support import new_schema_name
from private_pg import PrivateCluster, private_cluster

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ROLE, PASSWORD = "wf_app", "right"
HBA = f"""\
local all all trust
host all {ROLE} 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
"""


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivateCluster]:
    """A private cluster where ROLE needs its password (the superuser does not)."""
    with private_cluster() as cluster:
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
            conn.execute(f"GRANT CREATE ON DATABASE postgres TO {ROLE}")
            (cluster.data / "pg_hba.conf").write_text(HBA)
            conn.execute("SELECT pg_reload_conf()")
        wait_until(lambda: _refused(cluster, "wrong"), 10, "the server to check passwords")
        yield cluster


def _url(pg: PrivateCluster, password: str) -> str:
    return f"postgresql://{ROLE}:{password}@127.0.0.1:{pg.port}/postgres"


def _refused(pg: PrivateCluster, password: str) -> bool:
    try:
        psycopg.connect(_url(pg, password), connect_timeout=2).close()
    except psycopg.OperationalError:
        return True
    return False


def test_a_wrong_password_is_one_line_at_once(pg: PrivateCluster) -> None:
    # connect_timeout=300: retrying the refusal instead of failing at once would outlast the
    # 30 s the command is given.
    env = {k: v for k, v in os.environ.items() if k != "WIREFRAME_STORE"}
    query = "?connect_timeout=300"
    proc = subprocess.run(
        [sys.executable, "-m", "wireframe", "jobs", "--store", _url(pg, "wrong") + query],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=30,
    )
    assert (proc.returncode, proc.stdout) == (1, ""), proc
    assert proc.stderr == (
        f"wireframe: error: cannot open store {_url(pg, '***')}{query}: PostgreSQL refused the "
        f'connection: password authentication failed for user "{ROLE}"\n'
    )


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_password_that_stops_working_fails_the_store_at_once(pg: PrivateCluster) -> None:
    store = PostgresStore(
        _url(pg, PASSWORD), schema=new_schema_name("wfr"), pool_size=2, reconnect_timeout=300
    )
    await store.open()
    try:
        assert await store.get(1) is None
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {ROLE} PASSWORD 'changed'")
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                (ROLE,),
            )
        # Not an outage to wait out (reconnect_timeout 300 s): it fails well within 60 s.
        with anyio.fail_after(60), pytest.raises(StoreError) as info:
            await store.get(1)
        assert str(info.value) == (
            f"{_url(pg, '***')}: PostgreSQL refused the connection: password authentication "
            f'failed for user "{ROLE}"'
        )
    finally:
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            conn.execute(f"ALTER ROLE {ROLE} PASSWORD '{PASSWORD}'")
        await store.close()


async def _submit(url: str, count: int) -> None:
    async with Scheduler(PostgresStore(url), domains=[t], worker=False) as client:
        for n in range(count):
            await client.submit(Hold(n))


def _records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]


def _runs(record: Path) -> int:
    return len(record.read_text().splitlines()) if record.exists() else 0


def _said(log: Path, text: str) -> bool:
    return any(text in r["message"] for r in _records(log))


def test_an_outage_under_a_worker_is_one_warning_and_one_info(
    pg: PrivateCluster, tmp_path: Path
) -> None:
    schema = new_schema_name("wfl")
    url = f"{_url(pg, PASSWORD)}?schema={schema}"
    anyio.run(_submit, url, 2)
    record = tmp_path / "runs.txt"
    cluster = Cluster(schema)
    worker = cluster.start(
        "w",
        "--log-level",
        "info",
        "--log-format",
        "json",
        tmp=tmp_path,
        store=url,
        WF_RECORD_FILE=record,
        WF_CLAIM_TTL=30.0,
        WF_POLL=0.2,
    )
    log = cluster.logs["w"]
    try:
        wait_until(lambda: _runs(record) == 2, 30, "both jobs to start", cluster)
        time.sleep(0.3)  # the worker idles on its listening connection, its jobs running
        before = len(_records(log))
        pg.stop("immediate")
        wait_until(lambda: _said(log, "lost PostgreSQL"), 20, "the outage line", cluster)
        pg.start()
        wait_until(lambda: _said(log, "reconnected to PostgreSQL"), 20, "the recovery", cluster)
        worker.send_signal(signal.SIGTERM)
        worker.wait(20)
    finally:
        cluster.stop_all()
        if not pg.running():
            pg.start()
    records = _records(log)
    assert not [r for r in records if r["logger"].startswith("psycopg")], cluster.output()
    stop = next(i for i, r in enumerate(records) if "received SIGTERM" in r["message"])
    seen = [(r["level"], r["logger"], r["service"], r["task"]) for r in records[before:stop]]
    where = ("wireframe.store", "worker", "scheduler")
    assert seen == [("warning", *where), ("info", *where)], cluster.output()
    shown = re.escape(f"{_url(pg, '***')}?schema={schema}")
    lost, back = (r["message"] for r in records[before:stop])
    assert re.fullmatch(rf"lost PostgreSQL at {shown} \([^)]+\); retrying for up to 120 s", lost)
    assert re.fullmatch(rf"reconnected to PostgreSQL at {shown} after \d+\.\d s", back)
