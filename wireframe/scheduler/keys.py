"""Concurrency keys and fair share: `concurrency_key=`, `max_per_key=`, `weight=`.

A domain or a job type may name a key callable (payload -> str). It runs at submission; the
store keeps the key (scoped by where it was declared, so two types keying by account share caps
only when the domain declares the key) with its cap and weight, and enforces both when it
claims:

- `max_per_key=n`: never more than n jobs of one key *running* across every worker. A job
  waiting for its children, suspended, sleeping, scheduled or paused does not hold its key (its
  children may need it); it takes a place again when it is claimed again. A lost worker's jobs
  hold their key until their lease is reclaimed.
- fair share: within one priority, jobs of different keys are claimed round robin (a key with
  `weight=2` gets two turns for one of a key with weight 1) instead of in submission order.
  Priority and aging still come first. Jobs without a key keep their submission order and go
  ahead of keyed jobs of the same priority.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from wireframe.scheduler.errors import ConfigError
from wireframe.store.flowkeys import KEY_SEPARATOR

__all__ = ["KeyPolicy", "flow_fields", "key_policy", "key_settings"]

KeyFn = Callable[[Any], str]
MAX_WEIGHT = 1_000_000.0
"""The largest weight: one turn of a key of weight 1 is as long as 10**6 turns of this one."""


@attrs.frozen
class KeyPolicy:
    """Where a concurrency key was declared, its callable, its cap and its weight."""

    scope: str
    key: KeyFn
    max_per_key: int | None
    weight: float


def key_policy(
    concurrency_key: object, max_per_key: object, weight: object, *, scope: str, where: str
) -> KeyPolicy | None:
    """Validate `concurrency_key=`, `max_per_key=`, `weight=` of a domain or job type.

    None when no key is declared (then the other two must be left at their defaults).
    """
    if concurrency_key is None:
        if max_per_key is not None:
            raise ConfigError(f"{where}: max_per_key={max_per_key!r} needs a concurrency_key=")
        if weight is not None:
            raise ConfigError(f"{where}: weight={weight!r} needs a concurrency_key=")
        return None
    if not callable(concurrency_key):
        raise ConfigError(
            f"{where}: concurrency_key must be a callable payload -> str, got {concurrency_key!r}"
        )
    cap = None
    if max_per_key is not None:
        if isinstance(max_per_key, bool) or not isinstance(max_per_key, int) or max_per_key < 1:
            raise ConfigError(f"{where}: max_per_key must be an int >= 1, got {max_per_key!r}")
        cap = max_per_key
    share = 1.0 if weight is None else check_weight(weight, where=where)
    return KeyPolicy(scope, concurrency_key, cap, share)


def check_weight(value: object, *, where: str) -> float:
    """A fair-share weight: a finite number > 0 and at most `MAX_WEIGHT`."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where}: weight must be a finite number > 0, got {value!r}")
    if value <= 0 or value > MAX_WEIGHT:
        raise ConfigError(f"{where}: weight must be > 0 and <= {MAX_WEIGHT:g}, got {value!r}")
    return float(value)


def flow_fields(
    policy: KeyPolicy | None, payload: object, *, where: str
) -> tuple[str | None, int | None, float]:
    """(stored key, cap, weight) of one submission: the key callable runs here."""
    if policy is None:
        return None, None, 1.0
    value = policy.key(payload)
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"{where}: the concurrency_key callable returned {value!r}; "
            "it must return a non-empty str"
        )
    return f"{policy.scope}{KEY_SEPARATOR}{value}", policy.max_per_key, policy.weight


def key_settings(policy: KeyPolicy | None) -> dict[str, object]:
    """The recorded settings of a job type's key (`wireframe types`, `wireframe submit`)."""
    if policy is None:
        return {"concurrency_key": False}
    return {"concurrency_key": True, "max_per_key": policy.max_per_key, "weight": policy.weight}
