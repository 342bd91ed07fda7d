"""Version-7 UUIDs that strictly increase within a process (RFC 9562, section 6.2, method 2).

A version-7 UUID is 48 bits of Unix milliseconds, the version, 74 random bits and the variant;
as an integer (and as text) it sorts by its millisecond, then by its random bits. Two drawn in
the same millisecond would sort at random, so the random bits double as a counter: within one
millisecond (or when the clock steps back) each new value adds a random step of 1 to 2**32 to
the last one's random bits, and one that would overflow moves on to the next millisecond.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable

RAND_BITS = 74
"""The random bits of a version-7 UUID: 12 of `rand_a`, then 62 of `rand_b`."""

_RAND_LIMIT = 1 << RAND_BITS
_STEP_BITS = 32
_MS_MASK = (1 << 48) - 1
_RAND_B_MASK = (1 << 62) - 1


def compose(ms: int, rand: int) -> uuid.UUID:
    """The version-7 UUID of Unix millisecond `ms` and the 74 random bits `rand`."""
    value = (ms & _MS_MASK) << 80 | 0x7 << 76 | ((rand >> 62) & 0xFFF) << 64
    value |= 0b10 << 62 | (rand & _RAND_B_MASK)
    return uuid.UUID(int=value)


class MonotonicUuid7:
    """A source of version-7 UUIDs, each greater than the one before (safe across threads).

    `clock` gives Unix seconds; `randbits(k)` gives k random bits (tests pass their own).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        randbits: Callable[[int], int] = secrets.randbits,
    ) -> None:
        self._clock = clock
        self._randbits = randbits
        self._lock = threading.Lock()
        self._ms = -1
        self._rand = 0

    def __call__(self) -> uuid.UUID:
        """The next UUID: the clock's millisecond, or the last one's if the clock is behind."""
        ms = int(self._clock() * 1000)
        with self._lock:
            if ms > self._ms:
                rand = self._randbits(RAND_BITS)
            else:
                ms = self._ms
                rand = self._rand + 1 + self._randbits(_STEP_BITS)
                if rand >= _RAND_LIMIT:  # the counter is spent: borrow the next millisecond
                    ms += 1
                    rand = self._randbits(RAND_BITS)
            self._ms, self._rand = ms, rand
        return compose(ms, rand)


next_uuid7 = MonotonicUuid7()
"""The process's one source: the UUIDs `ctx.uuid7()` records."""
