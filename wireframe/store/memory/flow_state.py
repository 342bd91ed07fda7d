"""The flow-control rows of the memory store: paused domains and types, throttle periods."""

from __future__ import annotations

from typing import Any

from wireframe.store.memory.rows import ACTIVE

Key = tuple[str, str]


class Flows:
    """The memory twin of the `paused_flows` and `job_throttles` tables."""

    __slots__ = ("paused", "throttles", "twins")

    def __init__(self) -> None:
        self.paused: dict[tuple[str, str], float] = {}
        """(kind, name) of each paused domain or type -> when it was paused."""
        self.throttles: dict[tuple[str, str], tuple[float, int]] = {}
        """(type, key) -> (until when a throttled submit is refused, the job it created)."""
        self.twins: dict[tuple[str, str], set[int]] = {}
        """(type, key) -> the active jobs holding it together: one that has started and the
        debounced job submitted beside it (the only way a key gets two holders)."""

    def rehold(self, jobs: dict[int, Any], keys: dict[tuple[str, str], int], key: Key) -> None:
        """The holder of `key` ended: hand the key to its twin if that one is still active."""
        twins = self.twins.get(key)
        if twins is None:
            return
        alive = {i for i in twins if (job := jobs.get(i)) is not None and job.state in ACTIVE}
        if alive:
            keys[key] = max(alive)
        if len(alive) < 2:
            del self.twins[key]
        else:
            self.twins[key] = alive
