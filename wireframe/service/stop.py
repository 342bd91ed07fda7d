"""The stop signal: one shared receiver per service run, and the reason a stop was requested."""

from __future__ import annotations

import enum
import math

import anyio
import attrs


class StopReasonKind(enum.Enum):
    """What requested the stop."""

    SIGNAL = "signal"
    TASK_EXITED = "task_exited"
    TASK_FAILED = "task_failed"
    ALL_DONE = "all_done"
    REQUESTED = "requested"


@attrs.frozen
class StopReason:
    """Why the service is stopping; ``str()`` gives a readable sentence."""

    kind: StopReasonKind
    task_id: str | None = None
    signal: str | None = None
    message: str | None = None

    def __str__(self) -> str:
        match self.kind:
            case StopReasonKind.SIGNAL:
                return f"received {self.signal}"
            case StopReasonKind.TASK_EXITED:
                return f"task {self.task_id!r} exited"
            case StopReasonKind.TASK_FAILED:
                return f"task {self.task_id!r} failed: {self.message}"
            case StopReasonKind.ALL_DONE:
                return "all oneshot tasks and preconditions finished"
            case _:
                return self.message or "Service.stop() was called"


class StopReceiver:
    """What a task sees of the stop signal; one instance is shared by every task of a run."""

    __slots__ = ("_deadline", "_event", "_forced", "_reason")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._reason: StopReason | None = None
        self._deadline: float | None = None
        self._forced = False

    @property
    def stopped(self) -> bool:
        """True once a stop has been requested."""
        return self._reason is not None

    @property
    def reason(self) -> StopReason | None:
        """Why the stop was requested, or None while running."""
        return self._reason

    @property
    def deadline(self) -> float | None:
        """The ``anyio.current_time()`` at which running tasks get cancelled; None before stop."""
        return self._deadline

    @property
    def forced(self) -> bool:
        """True once the stop has been forced (tasks still running are cancelled at once)."""
        return self._forced

    async def wait(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109
        """Wait for stop (at most ``timeout`` seconds); return True once stop is requested."""
        if self._reason is not None:
            return True
        if timeout is None:
            await self._event.wait()
            return True
        with anyio.move_on_after(timeout):
            await self._event.wait()
        return self._reason is not None

    def _request(
        self, reason: StopReason, deadline: float = math.inf, *, forced: bool = False
    ) -> bool:
        """Request a stop (first reason wins); return True if this call requested it.

        ``deadline`` is when tasks still running will be cancelled (never, by default);
        ``forced`` marks the stop forced without moving that deadline.
        """
        if self._reason is not None:
            return False
        self._reason = reason
        self._deadline = deadline
        self._forced = forced
        self._event.set()
        return True

    def _force(self, now: float) -> None:
        """Mark the stop forced at ``now``: the deadline becomes ``now`` unless it was earlier."""
        self._forced = True
        if self._deadline is None or now < self._deadline:
            self._deadline = now

    def __repr__(self) -> str:
        return f"<StopReceiver stopped={self.stopped} reason={self._reason}>"
