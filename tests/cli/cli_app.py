"""The app the CLI tests run: `python -m wireframe worker --app cli_app:scheduler`.

`slow` reports progress and then waits until the file named in its payload exists (or until it
is cancelled), so a test can see it running and then let it finish.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import attrs

from wireframe import Domain, JobContext, Priority, Retry, Scheduler

demo = Domain("demo")


def double(n: int) -> int:
    return 2 * n


@demo.job()
async def ok(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    return {"echo": job}


@demo.job(retry=Retry.none())
async def boom(job: dict[str, Any], ctx: JobContext) -> None:
    raise ValueError(f"boom: {job.get('why', '?')}")


@demo.job()
async def parent(job: dict[str, Any], ctx: JobContext) -> int:
    value: int = await ctx.step("double", double, 21)
    child = await ctx.spawn({"from": "parent"}, type="demo::ok")
    await ctx.join(child)
    return value


@demo.job()
async def slow(job: dict[str, Any], ctx: JobContext) -> str:
    ctx.progress(0.5, "halfway there")
    await ctx.heartbeat()
    release = Path(job["release"])
    while not release.exists():  # the test creates the file to let the job finish
        await anyio.sleep(0.02)
    return "released"


def note(path: str) -> str:
    """A step's side effect: one line per run, so a test can count the runs."""
    with open(path, "a") as f:
        f.write("ran\n")
    return "noted"


@demo.job()
async def stuck(job: dict[str, Any], ctx: JobContext) -> str:
    """A durable step, then a wait for the release file, ignoring `ctx.cancelled`."""
    await ctx.step("note", note, job["notes"])
    release = Path(job["release"])
    while not release.exists():
        await anyio.sleep(0.02)
    return "released"


media = Domain("media")
"""Job types with typed payloads and settings, for `wireframe submit` and `wireframe types`
(no worker runs them: a test records them in the store by opening a Scheduler of them)."""


@attrs.frozen
class Resize:
    path: str
    width: int
    sharpen: bool = False


@media.job(
    retry=Retry.fixed(attempts=3, delay=1),
    priority=Priority.HIGH,
    ttl=3600,
    tags=["images"],
    resources={"gpu": 1},
    key=lambda r: f"{r.path}:{r.width}",
)
async def resize(job: Resize, ctx: JobContext) -> None: ...


@media.job
async def after(job: dict[str, Any], ctx: JobContext) -> None: ...


scheduler = Scheduler(
    os.environ.get("CLI_APP_STORE", "memory://"),
    domains=[demo],
    max_concurrency=4,
    poll_interval=0.05,
    claim_ttl=5.0,
)
