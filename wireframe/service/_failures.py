"""How the service tells a task's, hook's or resource's failure from a cancellation it must let
through, and how a failure reads in messages."""

from __future__ import annotations

import anyio

__all__ = ["describe", "must_propagate"]


def _is_cancellation(exc: BaseException) -> bool:
    """True if ``exc`` is the backend's cancellation exception, or a group made only of them."""
    cancelled = anyio.get_cancelled_exc_class()
    if isinstance(exc, BaseExceptionGroup):
        return exc.split(cancelled)[1] is None
    return isinstance(exc, cancelled)


def _own_cancellation(exc: BaseException) -> bool:
    """True if ``exc`` is a cancellation and a cancel scope around the caller was cancelled.

    That scope is the service's (graceful timeout, forced stop) or its owner's; a cancellation
    raised while none is cancelled came from elsewhere (e.g. awaiting a future somebody else
    cancelled) and ends the task like any other exception.
    """
    return _is_cancellation(exc) and anyio.current_effective_deadline() <= anyio.current_time()


def must_propagate(exc: BaseException) -> bool:
    """True for what a task or hook's failure must not swallow: our cancellation, coro close."""
    return isinstance(exc, GeneratorExit) or _own_cancellation(exc)


def describe(exc: BaseException) -> str:
    """How a task's or hook's failure reads in messages: its repr, or a foreign cancellation."""
    if _is_cancellation(exc):
        return f"{type(exc).__name__}, a cancellation the service did not request"
    return repr(exc)
