"""SIGINT/SIGTERM handling: the first signal asks for a graceful stop, the second forces it."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus

from wireframe.service.log import logger

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals a service reacts to when ``handle_signals`` is on."""


def can_handle_signals() -> bool:
    """Signal handlers can only be installed from the main thread."""
    return threading.current_thread() is threading.main_thread()


async def watch_signals(
    on_first: Callable[[str], None],
    on_second: Callable[[str], None],
    *,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Call ``on_first`` at the first SIGINT/SIGTERM and ``on_second`` at every later one."""
    with anyio.open_signal_receiver(*HANDLED_SIGNALS) as received:
        task_status.started()
        count = 0
        async for signum in received:
            count += 1
            name = signal.Signals(signum).name
            if count == 1:
                logger.warning("received %s: stopping gracefully (send it again to force)", name)
                on_first(name)
            else:
                logger.warning("received %s again: forcing the stop", name)
                on_second(name)
