"""Input checks shared by the service modules: each raises ServiceConfigError naming the value."""

from __future__ import annotations

import math

from wireframe.service.errors import ServiceConfigError


def check_id(what: str, value: object) -> str:
    """Return ``value`` if it is a non-empty str, else raise naming it."""
    if not isinstance(value, str) or not value.strip():
        raise ServiceConfigError(f"{what} must be a non-empty str, got {value!r}")
    return value


def check_timeout(what: str, value: object, *, finite: bool = False) -> float:
    """Return ``value`` as a float if it is a number >= 0 (inf allowed unless ``finite``),
    else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ServiceConfigError(f"{what} must be a number of seconds, got {value!r}")
    if math.isnan(value) or value < 0:
        raise ServiceConfigError(f"{what} must be >= 0 seconds, got {value!r}")
    if finite and math.isinf(value):
        raise ServiceConfigError(f"{what} must be a finite number of seconds, got {value!r}")
    return float(value)


def check_number(what: str, value: object, *, low: float, high: float = math.inf) -> float:
    """Return ``value`` as a float if it is a finite number in ``[low, high]``, else raise
    naming it (``high`` may be inf: then only the lower bound applies)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ServiceConfigError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or not low <= value <= high:
        bounds = f">= {low:g}" if math.isinf(high) else f"between {low:g} and {high:g}"
        raise ServiceConfigError(f"{what} must be a finite number {bounds}, got {value!r}")
    return float(value)


def check_count(what: str, value: object, *, low: int = 0) -> int:
    """Return ``value`` if it is an int >= ``low``, else raise naming it."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ServiceConfigError(f"{what} must be an int >= {low}, got {value!r}")
    return value
