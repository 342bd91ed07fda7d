"""A standalone worker process and a submit-only client, sharing one SQLite file.

    python examples/standalone_worker.py

This script plays both roles. It starts itself again as a child process with ``--worker DB``:
that process is a ``Service`` whose only task is a ``Worker(store, domains)``, which runs jobs
and nothing else. The parent process is the client: a ``Service`` hosting
``Scheduler(..., worker=False)``, which submits jobs, waits for their results and runs none
itself. Both know the same domains (the job types), and the SQLite store coordinates them; more
worker processes could share the file the same way. At the end the client stops the worker
with SIGTERM, and the worker shuts down gracefully.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import attrs

from wireframe import (
    Domain,
    JobContext,
    Scheduler,
    Service,
    StopReceiver,
    TaskKind,
    Worker,
)

media = Domain("media")


@attrs.frozen
class Resize:
    path: str
    width: int


@media.job
async def resize(job: Resize, ctx: JobContext) -> str:
    return f"{job.path} at {job.width}px, by worker process {os.getpid()}"


def run_worker(db: Path) -> int:
    """The worker process: runs jobs until SIGTERM or SIGINT."""
    service = Service("worker", graceful_timeout=5.0)
    service.add_task(Worker(f"sqlite:///{db}", [media], max_concurrency=4, poll_interval=0.1))
    return service.run_sync(log_level=logging.WARNING)


def run_client(db: Path) -> int:
    """The client process: submits jobs and reads their results; runs none itself."""
    scheduler = Scheduler(f"sqlite:///{db}", domains=[media], worker=False)
    service = Service("client", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def submit_and_wait(stop: StopReceiver) -> None:
        outs = await scheduler.submit_many(Resize(f"/img/{n}.jpg", 320) for n in range(5))
        print(f"client process {os.getpid()} submitted jobs {[out.id for out in outs]}")
        for out in outs:
            print("  ", await scheduler.result(out.id, timeout=20))
        service.stop("all results in")

    return service.run_sync(log_level=logging.WARNING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=Path, metavar="DB", help="run as the worker process")
    args = parser.parse_args()
    if args.worker is not None:
        return run_worker(args.worker)

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "jobs.db"
        worker = subprocess.Popen([sys.executable, __file__, "--worker", str(db)])
        try:
            code = run_client(db)
        finally:
            worker.terminate()  # SIGTERM: a graceful stop
            worker_code = worker.wait(timeout=20)
        print(f"worker process exited with code {worker_code}")
        return code or worker_code


if __name__ == "__main__":
    raise SystemExit(main())
