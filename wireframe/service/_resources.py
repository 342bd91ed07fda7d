"""Managed resources: context managers entered while wiring, closed in reverse after the hooks."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import anyio

from wireframe.service._failures import describe, must_propagate
from wireframe.service._validate import check_id, check_timeout
from wireframe.service.errors import (
    ResourceCloseFailedError,
    ResourceCloseTimeoutError,
    ServiceConfigError,
    ServiceFailure,
    WiringError,
)
from wireframe.service.log import logger
from wireframe.service.status import ResourceStatus, TaskState

DEFAULT_CLOSE_TIMEOUT = 10.0
"""Seconds a managed resource gets to close unless ``provide_managed`` says otherwise."""

ExitFn = Callable[[None, None, None], Any]


class ManagedResource:
    """One entered context manager: how to close it, its timeout, and how closing went."""

    __slots__ = ("duration", "error", "exit", "id", "is_async", "layer", "state", "timeout")

    def __init__(self, id: str, layer: str, timeout: float, exit: ExitFn, is_async: bool) -> None:
        self.id = id
        self.layer = layer
        self.timeout = timeout
        self.exit = exit
        self.is_async = is_async
        self.state = TaskState.RUNNING
        self.duration: float | None = None
        self.error: str | None = None

    def snapshot(self) -> ResourceStatus:
        """The resource's status: running while open, then how closing went."""
        return ResourceStatus(self.id, self.layer, self.state, self.duration, self.error)


def check_managed_args(layer: str, cm: object, timeout: object) -> tuple[bool, float]:
    """Check ``provide_managed``'s arguments: return (is_async, timeout), else raise naming the
    layer. An object that is both an async and a sync context manager is entered as async."""
    try:
        seconds = check_timeout("provide_managed close_timeout", timeout)
    except ServiceConfigError as exc:
        raise WiringError(layer, str(exc)) from None
    kind = type(cm)  # the protocols are looked up on the type, as ``async with`` does
    if hasattr(kind, "__aenter__") and hasattr(kind, "__aexit__"):
        return True, seconds
    if hasattr(kind, "__enter__") and hasattr(kind, "__exit__"):
        return False, seconds
    hint = " (an awaitable: pass the context manager itself, not a coroutine)"
    raise WiringError(
        layer,
        f"provide_managed expects an async or sync context manager, got {cm!r}"
        + (hint if hasattr(cm, "__await__") else ""),
    )


async def enter(cm: Any, is_async: bool) -> tuple[object, ExitFn]:
    """Enter ``cm``; return the resource and the bound exit method."""
    if is_async:
        exit_fn: ExitFn = type(cm).__aexit__.__get__(cm)
        return await type(cm).__aenter__(cm), exit_fn
    exit_fn = type(cm).__exit__.__get__(cm)
    return type(cm).__enter__(cm), exit_fn


def check_resource_id(layer: str, value: object, taken: list[ManagedResource]) -> str:
    """Validate a resource id: a non-empty str not used by another managed resource."""
    try:
        id = check_id("provide_managed id", value)
    except ServiceConfigError as exc:
        raise WiringError(layer, str(exc)) from None
    for other in taken:
        if other.id == id:
            raise WiringError(
                layer, f"managed resource id {id!r} is already used by layer {other.layer!r}"
            )
    return id


async def close_all(open_: list[ManagedResource]) -> list[ServiceFailure]:
    """Close the resources still open, last opened first, each within its own timeout.

    Each one is removed from ``open_`` as its closing starts, so closing twice is harmless.
    Closing is shielded from cancellation around it (a forced stop, a run being cancelled):
    only each resource's own timeout cuts it short.
    """
    failures: list[ServiceFailure] = []
    with anyio.CancelScope(shield=True):
        while open_:
            failure = await _close_one(open_.pop())
            if failure is not None:
                failures.append(failure)
    return failures


async def _close_one(res: ManagedResource) -> ServiceFailure | None:
    t0 = time.monotonic()
    error: BaseException | None = None
    try:
        with anyio.move_on_after(res.timeout) as timer:
            try:
                result = res.exit(None, None, None)
                if res.is_async:
                    await result
            except BaseException as exc:  # as for hooks: all but our cancellation fail it
                if must_propagate(exc):
                    raise
                error = exc
    except BaseException:  # e.g. GeneratorExit: the event loop itself is going away
        res.state, res.error = TaskState.CANCELLED, "cancelled"
        res.duration = time.monotonic() - t0
        raise
    res.duration = time.monotonic() - t0
    if error is not None:
        res.state, res.error = TaskState.FAILED, describe(error)
        logger.error("resource %r failed to close: %s", res.id, res.error, exc_info=error)
        return ResourceCloseFailedError(res.id, res.layer, error, description=res.error)
    if timer.cancelled_caught:
        res.state, res.error = TaskState.CANCELLED, "timed out"
        failure = ResourceCloseTimeoutError(res.id, res.layer, res.timeout)
        logger.error("%s", failure)
        return failure
    res.state = TaskState.FINISHED
    logger.info("resource %r closed in %.3f s", res.id, res.duration)
    return None
