"""Schedulers on each store for the durable tests: memory, a SQLite file, PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from wireframe import Domain, JobState, Scheduler
from wireframe.testing import running

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from pg_support import fresh_store_url

KINDS = ["memory", "sqlite"]
ALL_KINDS = [*KINDS, pytest.param("postgres", marks=pytest.mark.postgres)]


def store_url(kind: str, tmp_path: Path) -> AbstractAsyncContextManager[str]:
    """The URL of a fresh store of `kind` (a PostgreSQL schema is dropped afterwards)."""
    return fresh_store_url(kind, tmp_path, "wfdur")


@asynccontextmanager
async def scheduler_on(
    kind: str, tmp_path: Path, *domains: Domain, **options: Any
) -> AsyncIterator[Scheduler]:
    """A running Scheduler of `domains` on a fresh store of `kind`."""
    async with store_url(kind, tmp_path) as url:
        scheduler = Scheduler(url, domains=list(domains), poll_interval=0.02, **options)
        async with running(scheduler) as s:
            yield s


async def until_state(s: Scheduler, job_id: int, state: JobState) -> None:
    """Return once the job is in `state` (fails after 10 s)."""
    with anyio.fail_after(10):
        while (job := await s.get(job_id)) is None or job.state is not state:
            await anyio.sleep(0.01)
