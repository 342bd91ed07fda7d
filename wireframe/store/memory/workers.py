"""The workers of a memory store: the twin of `wireframe.store.sql.workers`."""

from __future__ import annotations

import attrs

from wireframe.store.memory.table import Table
from wireframe.store.records import LOST_WORKERS_KEPT, WorkerInfo, WorkerRecord


def put(tb: Table, worker: WorkerInfo, starting: bool) -> None:
    """Insert or refresh a worker's row; delete the workers lost longer than LOST_WORKERS_KEPT."""
    now = tb.now
    for worker_id, row in list(tb.workers.items()):
        if row.heartbeat_at + row.info.ttl < now - LOST_WORKERS_KEPT:
            del tb.workers[worker_id]
    old = tb.workers.get(worker.worker_id)
    started = now if starting or old is None else old.started_at
    info = attrs.evolve(worker, resources=dict(worker.resources))
    tb.workers[worker.worker_id] = WorkerRecord(info, started, now, lost=False)


def remove(tb: Table, worker_id: str) -> None:
    """Delete a worker's row."""
    tb.workers.pop(worker_id, None)


def list_all(tb: Table) -> list[WorkerRecord]:
    """Every recorded worker, by id; `lost` where its heartbeat is older than its ttl."""
    now = tb.now
    return [
        attrs.evolve(row, lost=row.heartbeat_at + row.info.ttl < now)
        for _, row in sorted(tb.workers.items())
    ]
