"""The rate limits section of `wireframe top`: each limit's policy, tokens and held jobs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from wireframe.store.rates import RateState


def rate_table(states: Sequence[RateState]) -> Table:
    """One row per rate limit: its rate and burst, tokens left (the emptiest key's), keys
    without a token, and pending jobs it holds back."""
    table = Table(title="rate limits", title_justify="left")
    for name, justify in (
        ("limit", "left"),
        ("rate", "left"),
        ("burst", "right"),
        ("tokens", "right"),
        ("empty keys", "right"),
        ("held jobs", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for state in states:
        limit = state.limit
        table.add_row(
            limit.name,
            limit.describe() + (" per key" if limit.keyed else ""),
            str(limit.burst),
            f"{state.tokens:.1f}",
            str(state.exhausted) if limit.keyed else "",
            str(state.held),
        )
    return table


def rate_json(states: Sequence[RateState]) -> list[dict[str, Any]]:
    """The rate limits as JSON objects (`wireframe top --json`)."""
    return [
        {
            "limit": s.limit.name,
            "scope": s.limit.scope,
            "count": s.limit.count,
            "per": s.limit.per,
            "burst": s.limit.burst,
            "keyed": s.limit.keyed,
            "tokens": round(s.tokens, 3),
            "empty_keys": s.exhausted,
            "held_jobs": s.held,
        }
        for s in states
    ]
