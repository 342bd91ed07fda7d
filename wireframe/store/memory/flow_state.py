"""The flow-control rows of the memory store: paused domains and types, throttle periods."""

from __future__ import annotations


class Flows:
    """The memory twin of the `paused_flows` and `job_throttles` tables."""

    __slots__ = ("paused", "throttles")

    def __init__(self) -> None:
        self.paused: dict[tuple[str, str], float] = {}
        """(kind, name) of each paused domain or type -> when it was paused."""
        self.throttles: dict[tuple[str, str], tuple[float, int]] = {}
        """(type, key) -> (until when a throttled submit is refused, the job it created)."""
