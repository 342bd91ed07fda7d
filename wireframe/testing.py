"""Helpers for testing code built on wireframe: run a task in the background of a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeVar

import anyio

from wireframe.service import StopReason, StopReasonKind, StopReceiver, Task

T = TypeVar("T", bound=Task)


@asynccontextmanager
async def running(task: T) -> AsyncIterator[T]:
    """Run `task` (a Scheduler, a Worker, any Task) until the block ends, then stop it.

    The block's exit sends the same stop signal a Service would and waits for the task to
    return, so a Scheduler shuts down as configured and leaves no job running.
    """
    stop = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(task.run, stop)
        try:
            yield task
        finally:
            stop._request(StopReason(StopReasonKind.REQUESTED, message="test block ended"))
