"""The one check every number a user gives the scheduler goes through (limits, seconds, counts)."""

from __future__ import annotations

import math

from wireframe.scheduler.errors import ConfigError


def number(
    value: object,
    where: str,
    *,
    low: float | None = None,
    strict: bool = False,
    integer: bool = False,
    infinite: bool = False,
) -> float:
    """`value` as a float if it is a number (an int if `integer`) of the allowed range.

    `low`: the least value allowed (excluded if `strict`); `infinite`: +inf is allowed. Raises
    ConfigError naming `where` and the value otherwise; NaN and bools are never numbers.
    """
    kind = int if integer else int | float
    if isinstance(value, bool) or not isinstance(value, kind):
        noun = "an int" if integer else "a number"
        raise ConfigError(f"{where} must be {noun}, got {value!r}")
    if math.isnan(value) or (math.isinf(value) and not (infinite and value > 0)):
        raise ConfigError(f"{where} must be a finite number, got {value!r}")
    if low is not None and (value < low or (strict and value == low)):
        raise ConfigError(f"{where} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return float(value)


def count(value: object, where: str, *, low: int = 1) -> int:
    """`value` if it is an int >= `low`; ConfigError naming `where` otherwise."""
    return int(number(value, where, low=low, integer=True))


def seconds(value: object, where: str, *, zero: bool = False) -> float:
    """A finite number of seconds, > 0 (or >= 0 with `zero`); ConfigError naming `where`."""
    return number(value, where, low=0.0, strict=not zero)
