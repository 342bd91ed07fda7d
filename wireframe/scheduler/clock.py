"""The clock a worker reads: wall time for due times, monotonic time for intervals."""

from __future__ import annotations

import time as _time
from typing import Protocol


class Clock(Protocol):
    """What a worker reads the time from; tests pass a clock they move by hand."""

    def time(self) -> float:
        """Wall-clock time, Unix seconds (due times, retry times, what the store compares)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (intervals, lease deadlines)."""
        ...


class SystemClock:
    """The machine's clocks (`time.time`, `time.monotonic`)."""

    time = staticmethod(_time.time)
    monotonic = staticmethod(_time.monotonic)


SYSTEM_CLOCK: Clock = SystemClock()
"""The default clock of every worker."""
