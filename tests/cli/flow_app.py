"""The app of the pause tests' worker process: `wireframe worker --app flow_app:scheduler`.

Domain `media` holds the jobs a test pauses; `mail` is served by the same worker, so a mail
job that has run shows the worker claimed after the pause.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio

from wireframe import Domain, JobContext, Scheduler

media = Domain("media")
mail = Domain("mail")


@media.job()
async def resize(job: dict[str, Any], ctx: JobContext) -> str:
    """Waits for the file named `release` in its payload, if any."""
    if "release" in job:
        release = Path(job["release"])
        while not release.exists():
            await anyio.sleep(0.02)
    return "resized"


@media.job()
async def crop(job: dict[str, Any], ctx: JobContext) -> str:
    return "cropped"


@mail.job()
async def send(job: dict[str, Any], ctx: JobContext) -> str:
    return "sent"


@mail.job()
async def note(job: dict[str, Any], ctx: JobContext) -> str:
    return "noted"


scheduler = Scheduler(
    os.environ.get("CLI_APP_STORE", "memory://"),
    domains=[media, mail],
    max_concurrency=4,
    poll_interval=0.05,
    claim_ttl=5.0,
)
