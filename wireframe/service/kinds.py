"""Task kinds: how a task relates to the precondition barrier and to the service's lifetime."""

from __future__ import annotations

import enum


class TaskKind(enum.Enum):
    """How a task relates to the precondition barrier and to the service's lifetime."""

    TASK = "task"
    """Long-running, constrained: starts after the preconditions; returning stops the service."""
    ONESHOT = "oneshot"
    """Constrained: starts after the preconditions; may return without stopping the service."""
    PRECONDITION = "precondition"
    """Checks an invariant and returns; constrained tasks wait for every precondition."""
    UNCONSTRAINED = "unconstrained"
    """Long-running, starts at once; returning stops the service."""
    UNCONSTRAINED_ONESHOT = "unconstrained_oneshot"
    """Starts at once and may return without stopping the service."""

    @property
    def constrained(self) -> bool:
        """True if this kind waits for every precondition before it starts."""
        return self in (TaskKind.TASK, TaskKind.ONESHOT)

    @property
    def oneshot(self) -> bool:
        """True if returning does not stop the service (oneshots and preconditions)."""
        return self in (
            TaskKind.ONESHOT,
            TaskKind.PRECONDITION,
            TaskKind.UNCONSTRAINED_ONESHOT,
        )
