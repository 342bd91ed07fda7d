"""Job priorities: named levels plus plain integers in a bounded range."""

from __future__ import annotations

import enum
from typing import Final

from wireframe.scheduler.errors import ConfigError

__all__ = [
    "AGING_STEP",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "Priority",
    "coerce_priority",
]

PRIORITY_MIN: Final = -1000
"""The lowest priority a job may have."""

PRIORITY_MAX: Final = 1000
"""The highest priority a job may have."""


class Priority(enum.IntEnum):
    """Named priority levels; a higher value runs first."""

    LOW = 0
    NORMAL = 10
    HIGH = 20
    CRITICAL = 30


AGING_STEP: Final = 10
"""How much a waiting job's effective priority rises per aging interval (one level)."""


def coerce_priority(value: object, *, where: str) -> int:
    """Return ``value`` as an integer priority, or raise ``ConfigError`` naming it and ``where``.

    Accepts a ``Priority``, an ``int`` in ``[PRIORITY_MIN, PRIORITY_MAX]`` (``bool`` is
    rejected) or a level name such as ``"high"`` (case-insensitive).
    """
    if isinstance(value, Priority):
        return int(value)
    if isinstance(value, str):
        try:
            return int(Priority[value.strip().upper()])
        except KeyError:
            names = ", ".join(p.name.lower() for p in Priority)
            raise ConfigError(
                f"{where}: invalid priority {value!r}: not a level name (one of {names})"
            ) from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{where}: invalid priority {value!r}: expected a Priority, an int or a level name,"
            f" not {type(value).__name__}"
        )
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise ConfigError(
            f"{where}: invalid priority {value!r}: must be between {PRIORITY_MIN}"
            f" and {PRIORITY_MAX}"
        )
    return int(value)
