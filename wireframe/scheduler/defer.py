"""`defer_until`: wait on an outside condition without holding a concurrency slot."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.running import Running

if TYPE_CHECKING:
    from wireframe.scheduler.worker import Worker


async def defer(
    worker: Worker, running: Running, condition: Callable[[], Any], poll_interval: float
) -> None:
    """Run `condition` every `poll_interval` seconds without holding a concurrency slot."""
    if isinstance(poll_interval, bool) or not isinstance(poll_interval, int | float):
        raise ConfigError(f"defer_until: poll_interval must be a number, got {poll_interval!r}")
    if not poll_interval > 0:
        raise ConfigError(f"defer_until: poll_interval must be > 0, got {poll_interval!r}")
    if await _truth(condition):
        return
    running.deferred = True
    worker._deferred += 1
    worker.limits.give_back(running.record)
    if worker._runners < worker.limits.max_concurrency + worker._deferred:
        worker._add_runner()  # this runner waits here: another one runs the freed slot
    worker._slot_freed.set()
    worker._wake.set()
    try:
        while not await _truth(condition):  # noqa: ASYNC110 (polling an outside condition)
            await anyio.sleep(poll_interval)
        worker._resuming += 1
        try:
            while not worker.limits.can_take(running.record):
                worker._slot_freed = anyio.Event()
                await worker._slot_freed.wait()
        finally:
            worker._resuming -= 1
    except BaseException:
        worker._deferred -= 1  # cancelled while deferred: it holds no slot to give back
        raise
    worker.limits.take(running.record)
    worker._deferred -= 1
    running.deferred = False


async def _truth(condition: Callable[[], Any]) -> bool:
    value = condition()
    if inspect.isawaitable(value):
        value = await value
    return bool(value)
