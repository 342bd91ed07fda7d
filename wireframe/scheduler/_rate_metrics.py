"""The rate limit gauges of the scheduler metrics: one series per limit, never one per key."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from wireframe.service.metrics import MetricFamily, gauge
from wireframe.store.rates import RateLimit, RateState

OTHER = "(other)"
"""The label of limits this process does not declare (another app's, or an old policy's)."""


def rate_gauges(declared: Iterable[RateLimit], states: Sequence[RateState]) -> list[MetricFamily]:
    """Tokens, buckets without a token and held jobs of every limit, labelled by its name
    (a domain or a job type): the ones this process declares, the rest summed as (other)."""
    names = {limit.name: limit for limit in declared}
    tokens = {name: float(limit.burst) for name, limit in names.items()}
    empty = dict.fromkeys(names, 0)
    held = dict.fromkeys(names, 0)
    for state in states:
        label = state.limit.name if state.limit.name in names else OTHER
        tokens[label] = min(tokens.get(label, state.tokens), state.tokens)
        empty[label] = empty.get(label, 0) + state.exhausted
        held[label] = held.get(label, 0) + state.held
    return [
        gauge(
            "wireframe_rate_limit_tokens",
            "Tokens left now in the emptiest bucket of each rate limit (a domain or a job "
            "type; for a keyed limit, its emptiest key's), across every process.",
            [({"limit": name}, value) for name, value in sorted(tokens.items())],
        ),
        gauge(
            "wireframe_rate_limit_empty_buckets",
            "Buckets (keys, for a keyed limit) of each rate limit with less than one token now.",
            [({"limit": name}, value) for name, value in sorted(empty.items())],
        ),
        gauge(
            "wireframe_rate_limited_jobs",
            "Pending jobs each rate limit held back when a claim last looked at them.",
            [({"limit": name}, value) for name, value in sorted(held.items())],
        ),
    ]
