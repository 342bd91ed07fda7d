"""Restart policies: when a supervised task that ended is started again, and how soon.

A task given ``restart=Restart.on_failure()`` that raises is started again after a backoff
instead of stopping the service; ``Restart.always()`` also restarts it when it returns. Past
the policy's intensity limit (more than ``max_restarts`` restarts within ``within`` seconds)
the failure escalates: the service stops, as it does for a task without a policy.
"""

from __future__ import annotations

import enum
import random

import attrs

from wireframe.service._validate import check_count, check_number, check_timeout
from wireframe.service.errors import ServiceConfigError

__all__ = ["Backoff", "Restart", "RestartOn"]

_DEFAULT_MAX = 30.0


@attrs.frozen
class Backoff:
    """Exponential backoff between restarts: ``initial * factor**n`` seconds, at most ``max``.

    Each delay is scaled down by a random factor in ``[1 - jitter, 1]``, so tasks that failed
    together do not all restart at the same instant, and no delay exceeds ``max``. A run that
    lasted ``reset_after`` seconds or more resets the sequence: its failure waits ``initial``
    again.
    """

    initial: float = attrs.field(default=0.5)
    factor: float = attrs.field(default=2.0)
    max: float = attrs.field(default=_DEFAULT_MAX)
    jitter: float = attrs.field(default=0.2)
    reset_after: float = attrs.field(default=30.0)

    def __attrs_post_init__(self) -> None:
        for name, low, high in (
            ("initial", 0.0, float("inf")),
            ("factor", 1.0, float("inf")),
            ("max", 0.0, float("inf")),
            ("jitter", 0.0, 1.0),
            ("reset_after", 0.0, float("inf")),
        ):
            value = check_number(f"Backoff {name}", getattr(self, name), low=low, high=high)
            object.__setattr__(self, name, value)
        if self.max < self.initial:
            raise ServiceConfigError(
                f"Backoff max ({self.max:g} s) must be >= initial ({self.initial:g} s)"
            )

    def delay(self, n: int, rand: float | None = None) -> float:
        """Seconds to wait before restart number ``n`` of a sequence (0 for the first).

        ``rand`` (in ``[0, 1]``) replaces ``random.random()`` for the jitter, for tests.
        """
        check_count("Backoff.delay n", n)
        raw = self.max if n >= 1075 else min(self.max, self.initial * self.factor**n)
        if self.jitter == 0.0:
            return raw
        if rand is None:
            rand = random.random()
        check_number("Backoff.delay rand", rand, low=0.0, high=1.0)
        return raw * (1.0 - self.jitter * rand)


class RestartOn(enum.Enum):
    """Which endings of a supervised task lead to a restart."""

    FAILURE = "failure"
    """Only raising (a return ends the task as it would without a policy)."""
    ALWAYS = "always"
    """Raising and returning alike, until the service stops."""


def _backoff(value: object) -> Backoff:
    if isinstance(value, Backoff):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        initial = check_timeout("Restart backoff", value, finite=True)
        return Backoff(initial=initial, max=max(initial, _DEFAULT_MAX))
    raise ServiceConfigError(f"Restart backoff must be a Backoff or a number, got {value!r}")


@attrs.frozen
class Restart:
    """A restart policy for a task: when to restart, the backoff, and the intensity limit.

    Build one with ``Restart.on_failure(...)`` or ``Restart.always(...)``. ``max_restarts``
    restarts are allowed within any ``within`` seconds; the failure after them escalates (the
    service stops). ``max_restarts=None`` never escalates.
    """

    on: RestartOn
    backoff: Backoff = attrs.field(factory=Backoff)
    max_restarts: int | None = 5
    within: float = 60.0

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.on, RestartOn):
            raise ServiceConfigError(f"Restart on must be a RestartOn, got {self.on!r}")
        object.__setattr__(self, "backoff", _backoff(self.backoff))
        if self.max_restarts is not None:
            check_count("Restart max_restarts", self.max_restarts)
        within = check_timeout("Restart within", self.within, finite=True)
        if within <= 0:
            raise ServiceConfigError(f"Restart within must be > 0 seconds, got {self.within!r}")
        object.__setattr__(self, "within", within)

    @classmethod
    def on_failure(
        cls,
        backoff: Backoff | float | None = None,
        *,
        max_restarts: int | None = 5,
        within: float = 60.0,
    ) -> Restart:
        """Restart the task when it raises; a number as ``backoff`` is the initial delay."""
        return cls(RestartOn.FAILURE, _or_default(backoff), max_restarts, within)

    @classmethod
    def always(
        cls,
        backoff: Backoff | float | None = None,
        *,
        max_restarts: int | None = 5,
        within: float = 60.0,
    ) -> Restart:
        """Restart the task whenever it ends, by raising or by returning, until stop."""
        return cls(RestartOn.ALWAYS, _or_default(backoff), max_restarts, within)

    def describe(self) -> str:
        """Human-readable summary, e.g. ``on failure, at most 5 restarts in 60 s``."""
        limit = (
            "no restart limit"
            if self.max_restarts is None
            else f"at most {self.max_restarts} restarts in {self.within:g} s"
        )
        b = self.backoff
        when = "on failure" if self.on is RestartOn.FAILURE else "always"
        return f"{when}, {limit}, backoff {b.initial:g}..{b.max:g} s"


def _or_default(backoff: Backoff | float | None) -> Backoff:
    return Backoff() if backoff is None else _backoff(backoff)
