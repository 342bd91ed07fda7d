"""Helpers for scheduler tests: run a scheduler in a task group and stop it cleanly."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from wireframe.scheduler import Scheduler
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver


@asynccontextmanager
async def running(scheduler: Scheduler) -> AsyncIterator[Scheduler]:
    """Run `scheduler` as its Service would, and stop it when the block ends."""
    stop = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(scheduler.run, stop)
        try:
            yield scheduler
        finally:
            stop._request(StopReason(StopReasonKind.REQUESTED, message="test finished"))
