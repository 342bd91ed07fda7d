"""A worker process for the crash tests: `python crash_app.py DB_PATH EFFECTS_DIR`.

With HANG=steps in the environment, the multi-step job stops between its second and third
step (after writing a `hanging` marker) so the test can kill the process there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import anyio

from wireframe import Domain, JobContext, Retry, Scheduler, Service

flow = Domain("crash")
EFFECTS = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(".")


def effect(name: str) -> str:
    """A side effect that must happen once: one line per call in effects.log."""
    with open(EFFECTS / "effects.log", "a") as f:
        f.write(name + "\n")
    return name


@flow.job(retry=Retry.fixed(attempts=5, delay=0))
async def multi(job: dict[str, Any], ctx: JobContext) -> str:
    await ctx.step("one", effect, "one")
    await ctx.step("two", effect, "two")
    if os.environ.get("HANG") == "steps":
        (EFFECTS / "hanging").write_text(str(os.getpid()))
        await anyio.sleep_forever()
    await ctx.step("three", effect, "three")
    return "done"


@flow.job(retry=Retry.fixed(attempts=5, delay=0))
async def sleepy(job: dict[str, Any], ctx: JobContext) -> str:
    await ctx.step("before", effect, "before")
    await ctx.sleep("nap", float(job["seconds"]))
    await ctx.step("after", effect, "after")
    return "slept"


@flow.job(retry=Retry.fixed(attempts=5, delay=0))
async def waiter(job: dict[str, Any], ctx: JobContext) -> object:
    await ctx.step("before", effect, "before")
    payload = await ctx.wait_event(job["event"], timeout=60)
    await ctx.step("after", effect, "after")
    return payload


def main() -> int:
    scheduler = Scheduler(
        f"sqlite:///{sys.argv[1]}", domains=[flow], claim_ttl=1.0, poll_interval=0.05
    )
    service = Service(name="crash-worker")
    service.add_task(scheduler)
    return service.run_sync()


if __name__ == "__main__":
    raise SystemExit(main())
