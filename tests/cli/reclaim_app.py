"""The app of the reclaim tests: `python -m wireframe worker --app reclaim_app:scheduler`.

Each job writes a marker file `<name>-<attempt>` (holding the worker's pid) into the directory
named in its payload when it starts. `hang_once` hangs on its first attempt (the test kills its
worker) and completes on the next one; `kill_worker` SIGKILLs its own worker every time.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

import anyio

from wireframe import Domain, JobContext, Scheduler

lost = Domain("lost")


def mark(job: dict[str, Any], ctx: JobContext, name: str) -> None:
    """Say that attempt `ctx.job.attempt` of job `name` started, in which process."""
    (Path(job["dir"]) / f"{name}-{ctx.job.attempt}").write_text(str(os.getpid()))


@lost.job
async def ping(job: dict[str, Any], ctx: JobContext) -> str:
    return "pong"


@lost.job  # the default retry policy: a single attempt
async def hang_once(job: dict[str, Any], ctx: JobContext) -> str:
    mark(job, ctx, "hang_once")
    if ctx.job.attempt == 1:
        await anyio.sleep_forever()
    return f"done on attempt {ctx.job.attempt}"


@lost.job(max_reclaims=1)
async def kill_worker(job: dict[str, Any], ctx: JobContext) -> None:
    mark(job, ctx, "kill_worker")
    os.kill(os.getpid(), signal.SIGKILL)


scheduler = Scheduler(
    os.environ.get("RECLAIM_APP_STORE", "memory://"),
    domains=[lost],
    claim_ttl=1.0,
    poll_interval=0.05,
)
