"""What the store's workers table tells an operator: who runs, and why a pending job waits."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from wireframe.cli import render
from wireframe.store import JobRecord, JobState, WorkerRecord


def worker_dict(worker: WorkerRecord) -> dict[str, Any]:
    """A worker as JSON-able data."""
    info = worker.info
    return {
        "worker_id": info.worker_id,
        "host": info.host,
        "pid": info.pid,
        "domains": list(info.domains),
        "tags": list(info.tags),
        "resources": dict(info.resources),
        "held": info.held,
        "ttl": info.ttl,
        "started_at": worker.started_at,
        "heartbeat_at": worker.heartbeat_at,
        "lost": worker.lost,
    }


def workers_table(workers: Sequence[WorkerRecord], title: str | None = None) -> Table:
    """Workers, one line each: id, host, pid, domains, tags, jobs held, heartbeat, start."""
    now = time.time()
    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title_justify="left",
    )
    table.add_column("worker", overflow="fold")
    table.add_column("host", overflow="fold")
    table.add_column("pid", justify="right", no_wrap=True)
    table.add_column("domains", overflow="fold")
    table.add_column("tags", overflow="fold")
    table.add_column("held", justify="right", no_wrap=True)
    table.add_column("beat", justify="right", no_wrap=True)
    table.add_column("up", justify="right", no_wrap=True)
    for worker in workers:
        info = worker.info
        beat = render.seconds(max(0.0, now - worker.heartbeat_at))
        table.add_row(
            info.worker_id,
            info.host,
            str(info.pid),
            ",".join(info.domains),
            ",".join(info.tags),
            str(info.held),
            Text(f"{beat} LOST", style="bold red") if worker.lost else beat,
            render.seconds(max(0.0, now - worker.started_at)),
        )
    return table


def can_take(worker: WorkerRecord, job: JobRecord) -> bool:
    """Whether a live worker may claim the job: its domain, all its tags, its resources."""
    info = worker.info
    return (
        not worker.lost
        and job.domain in info.domains
        and set(job.tags) <= set(info.tags)
        and all(info.resources.get(name, 0) >= n for name, n in job.resources.items())
    )


def why_waiting(job: JobRecord, workers: Sequence[WorkerRecord]) -> str | None:
    """Why no live worker can take a pending job, or None when one can (or it is not pending)."""
    if job.state is not JobState.PENDING:
        return None
    live = [w for w in workers if not w.lost]
    if any(can_take(w, job) for w in live):
        return None
    if not live:
        lost = f" ({len(workers)} lost)" if workers else ""
        return f"no live worker{lost}: start one with `wireframe worker`"
    serving = [w for w in live if job.domain in w.info.domains]
    if not serving:
        return f"no live worker runs domain {job.domain}"
    tagged = [w for w in serving if set(job.tags) <= set(w.info.tags)]
    if not tagged:
        return f"no live worker has tags {','.join(job.tags)} (of domain {job.domain})"
    needs = ", ".join(f"{name}={n}" for name, n in sorted(job.resources.items()))
    return f"no live worker has the resources {needs} (of domain {job.domain})"
