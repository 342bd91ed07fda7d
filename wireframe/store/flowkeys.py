"""Concurrency keys as the store keeps them: scoped key, cap, fair-share stamps, wait reasons.

A keyed job's row holds `flow_key` (``"<scope>|<value>"``: the domain or job type that declared
the key, then what the key callable returned), `key_cap` (None: no cap, fair share only) and
`fair_seq`, its place in the key's round-robin turn order. Stamps are integers: a job of a key
with weight w takes `stride(w)` units of virtual time, so within one priority jobs are claimed
by `(fair_seq, id)` and keys of equal weight take turns. Jobs without a key have stamp 0.

Why a pending job waits for its key is worked out when someone asks (`cap_reason`), from the
running count, never written by the claim: a claim that steps over a capped key's jobs writes
nothing on them, so the cap costs claims nothing beyond counting.
"""

from __future__ import annotations

import attrs

__all__ = ["KEY_SEPARATOR", "STRIDE", "KeyStats", "cap_reason", "key_value", "stride"]

KEY_SEPARATOR = "|"
"""Between the scope (a domain or type name, which never contains it) and the key's value."""
STRIDE = 1_000_000
"""Virtual time one job of a key of weight 1 takes."""


def stride(weight: float) -> int:
    """The virtual time one job of a key of this weight takes (at least 1)."""
    return max(1, round(STRIDE / weight))


def key_value(stored: str) -> str:
    """The key as the callable returned it (the stored key without its scope)."""
    return stored.split(KEY_SEPARATOR, 1)[-1]


def cap_reason(stored: str, cap: int) -> str:
    """Why a pending job waits: its key has `cap` jobs running."""
    return f"key {key_value(stored)} at its cap of {cap} running"


@attrs.frozen
class KeyStats:
    """Concurrency keys of one (domain, type): jobs held by a cap, the busiest key's load."""

    domain: str
    type: str
    waiting_on_cap: int
    """Pending jobs whose key runs as many jobs as its cap allows."""
    max_running_per_key: int
    """The most jobs any one key of the type runs now."""
