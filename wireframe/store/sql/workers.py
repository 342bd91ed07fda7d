"""The workers table: each live worker's row, refreshed on its heartbeat cadence."""

from __future__ import annotations

import json
from typing import Any

from wireframe.store.records import LOST_WORKERS_KEPT, WorkerInfo, WorkerRecord
from wireframe.store.sql.tx import Tx

_COLUMNS = "worker_id, host, pid, domains, tags, resources, held, ttl, started_at, heartbeat_at"


def put(tx: Tx, now: float, worker: WorkerInfo, starting: bool) -> None:
    """Insert or refresh a worker's row (heartbeat now; started now if `starting`), and delete
    the rows of workers lost longer than LOST_WORKERS_KEPT."""
    tx.execute("DELETE FROM workers WHERE heartbeat_at + ttl < ?", (now - LOST_WORKERS_KEPT,))
    started = "excluded.started_at" if starting else "workers.started_at"
    tx.execute(
        f"INSERT INTO workers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        f"ON CONFLICT (worker_id) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
        f"domains = excluded.domains, tags = excluded.tags, resources = excluded.resources, "
        f"held = excluded.held, ttl = excluded.ttl, started_at = {started}, "
        f"heartbeat_at = excluded.heartbeat_at",
        (
            worker.worker_id,
            worker.host,
            worker.pid,
            json.dumps(list(worker.domains)),
            json.dumps(list(worker.tags)),
            json.dumps(dict(worker.resources), sort_keys=True),
            worker.held,
            worker.ttl,
            now,
            now,
        ),
    )


def remove(tx: Tx, worker_id: str) -> None:
    """Delete a worker's row (it stopped cleanly)."""
    tx.execute("DELETE FROM workers WHERE worker_id = ?", (worker_id,))


def list_all(tx: Tx, now: float) -> list[WorkerRecord]:
    """Every recorded worker, by id; `lost` where its heartbeat is older than its ttl."""
    rows = tx.execute(f"SELECT {_COLUMNS} FROM workers ORDER BY worker_id").fetchall()
    return [_record(tuple(row), now) for row in rows]


def _record(row: tuple[Any, ...], now: float) -> WorkerRecord:
    worker_id, host, pid, domains, tags, resources, held, ttl, started_at, heartbeat_at = row
    info = WorkerInfo(
        worker_id=worker_id,
        host=host,
        pid=int(pid),
        domains=tuple(json.loads(domains)),
        tags=tuple(json.loads(tags)),
        resources=json.loads(resources),
        held=int(held),
        ttl=float(ttl),
    )
    lost = float(heartbeat_at) + float(ttl) < now
    return WorkerRecord(info, float(started_at), float(heartbeat_at), lost)
