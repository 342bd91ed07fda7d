"""The app of the live-progress tests: `python -m wireframe worker --app progress_app:scheduler`.

`advance` reports a quarter, waits for the file `next` in the folder its payload names, reports
three quarters, then waits for the file `release` (the test creates both). Its claim_ttl of
300 s puts the regular heartbeat 15 s away, so only the progress beat can carry it sooner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from wireframe import Domain, JobContext, Scheduler

steps = Domain("steps")


async def _until(path: Path) -> None:
    while not path.exists():  # the test creates the file
        await anyio.sleep(0.01)


@steps.job()
async def advance(job: dict[str, Any], ctx: JobContext) -> str:
    folder = Path(job["folder"])
    ctx.progress(0.25, "a quarter")
    await _until(folder / "next")
    ctx.progress(0.75, "three quarters")
    await _until(folder / "release")
    return "released"


scheduler = Scheduler(
    "memory://", domains=[steps], claim_ttl=300.0, poll_interval=0.05, max_concurrency=2
)
