"""Retry policies: how many attempts a job gets and how long to wait between them."""

from __future__ import annotations

import math
import random
from typing import Literal, get_args

import attrs

from wireframe.scheduler.errors import ConfigError

__all__ = ["Retry", "RetryKind", "coerce_retry"]

RetryKind = Literal["none", "fixed", "exponential"]
"""The shape of a retry policy's delays."""

_KINDS: tuple[str, ...] = get_args(RetryKind)


def _check_number(where: str, name: str, value: object, *, low: float, high: float) -> float:
    """Return ``value`` as a float if it is a finite real number in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {name}={value!r} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or not low <= value <= high:
        bounds = f">= {low:g}" if high == math.inf else f"between {low:g} and {high:g}"
        raise ConfigError(f"{where}: {name}={value!r} must be a finite number {bounds}")
    return float(value)


@attrs.frozen
class Retry:
    """A retry policy: the total number of attempts and the delay before each retry.

    Build one with ``Retry.none()``, ``Retry.fixed(...)`` or ``Retry.exponential(...)``.
    """

    attempts: int
    kind: RetryKind
    base: float = 0.0
    cap: float = 0.0
    jitter: float = 0.0

    def __attrs_post_init__(self) -> None:
        where = f"Retry(kind={self.kind!r})"
        if self.kind not in _KINDS:
            raise ConfigError(f"Retry: kind={self.kind!r} must be one of {', '.join(_KINDS)}")
        attempts: object = self.attempts
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ConfigError(f"{where}: attempts={attempts!r} must be an int >= 1")
        if self.kind == "none" and attempts != 1:
            raise ConfigError(f"{where}: attempts={attempts!r} must be 1 (no retries)")
        base = _check_number(where, "base", self.base, low=0.0, high=math.inf)
        cap = _check_number(where, "cap", self.cap, low=0.0, high=math.inf)
        jitter = _check_number(where, "jitter", self.jitter, low=0.0, high=1.0)
        if cap < base:
            raise ConfigError(f"{where}: cap={self.cap!r} must be >= base={self.base!r}")
        object.__setattr__(self, "base", base)
        object.__setattr__(self, "cap", cap)
        object.__setattr__(self, "jitter", jitter)

    @classmethod
    def none(cls) -> Retry:
        """Run the job once; a failure is final."""
        return cls(attempts=1, kind="none")

    @classmethod
    def fixed(cls, attempts: int = 3, delay: float = 1.0) -> Retry:
        """Make up to ``attempts`` attempts in total, waiting ``delay`` seconds between them."""
        _check_number("Retry.fixed", "delay", delay, low=0.0, high=math.inf)
        return cls(attempts=attempts, kind="fixed", base=delay, cap=delay)

    @classmethod
    def exponential(
        cls, attempts: int = 3, base: float = 1.0, cap: float = 60.0, jitter: float = 0.1
    ) -> Retry:
        """Make up to ``attempts`` attempts, waiting ``base * 2**n`` (at most ``cap``) seconds.

        Each delay is then multiplied by a random factor in ``[1 - jitter, 1 + jitter]``
        and clamped to ``[0, cap]``.
        """
        return cls(attempts=attempts, kind="exponential", base=base, cap=cap, jitter=jitter)

    def should_retry(self, attempt: int) -> bool:
        """Whether another attempt follows once attempt number ``attempt`` (1-based) failed."""
        return attempt < self.attempts

    def delay(self, attempt: int, rand: float | None = None) -> float:
        """Seconds to wait before the next attempt, after attempt ``attempt`` (1-based) failed.

        ``rand`` (in ``[0, 1]``) replaces ``random.random()`` for the jitter, for tests.
        """
        if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 1:
            raise ConfigError(f"Retry.delay: attempt={attempt!r} must be an int >= 1")
        if self.kind == "none":
            return 0.0
        if self.kind == "fixed":
            raw = self.base
        else:
            try:
                raw = min(self.cap, math.ldexp(self.base, attempt - 1))
            except OverflowError:  # base > 0 and 2**(attempt - 1) beyond any float
                raw = self.cap
        if self.jitter == 0.0 or raw == 0.0:
            return raw
        if rand is None:
            rand = random.random()
        elif not 0.0 <= rand <= 1.0:
            raise ConfigError(f"Retry.delay: rand={rand!r} must be between 0 and 1")
        factor = 1.0 - self.jitter + 2.0 * self.jitter * rand
        return min(self.cap, max(0.0, raw * factor))

    def describe(self) -> str:
        """Human-readable summary, e.g. ``3 attempts, exponential backoff 1s..60s``."""
        if self.kind == "none":
            return "no retries"
        plural = "attempt" if self.attempts == 1 else "attempts"
        if self.kind == "fixed":
            return f"{self.attempts} {plural}, {self.base:g}s apart"
        text = f"{self.attempts} {plural}, exponential backoff {self.base:g}s..{self.cap:g}s"
        if self.jitter:
            text += f" ±{self.jitter:.0%}"
        return text

    def to_json(self) -> dict[str, object]:
        """The policy as a JSON-able dict (see ``from_json``)."""
        return {
            "attempts": self.attempts,
            "kind": self.kind,
            "base": self.base,
            "cap": self.cap,
            "jitter": self.jitter,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Retry:
        """Rebuild a policy from ``to_json`` output; a bad dict raises ``ConfigError``."""
        if not isinstance(data, dict) or set(data) != {"attempts", "kind", "base", "cap", "jitter"}:
            raise ConfigError(f"Retry.from_json: not a serialised retry policy: {data!r}")
        kind = data["kind"]
        if kind not in _KINDS:
            raise ConfigError(f"Retry.from_json: kind={kind!r} must be one of {', '.join(_KINDS)}")
        return cls(
            attempts=data["attempts"],  # type: ignore[arg-type]
            kind=kind,  # type: ignore[arg-type]
            base=data["base"],  # type: ignore[arg-type]
            cap=data["cap"],  # type: ignore[arg-type]
            jitter=data["jitter"],  # type: ignore[arg-type]
        )


def coerce_retry(value: Retry | int | None, *, where: str) -> Retry:
    """Turn a ``retry=`` argument into a ``Retry``.

    ``None`` means ``Retry.none()``; an int ``n`` means ``Retry.exponential(attempts=n)``.
    """
    if value is None:
        return Retry.none()
    if isinstance(value, Retry):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(
            f"{where}: retry={value!r} must be a Retry policy, an int (attempts) or None,"
            f" not {type(value).__name__}"
        )
    if value < 1:
        raise ConfigError(f"{where}: retry={value!r}: the number of attempts must be >= 1")
    return Retry.exponential(attempts=value)
