"""The rate limit a claim carries (`ClaimRequest.rates`): a value type, nothing else.

A leaf module, so `wireframe.store.records` can name it without importing the GCRA arithmetic
of `wireframe.store.rates` (which builds on the records, and re-exports `RateLimit`).
"""

from __future__ import annotations

from typing import Literal

import attrs

__all__ = ["RateLimit"]


@attrs.frozen
class RateLimit:
    """One limit as a claim carries it: `count` tokens per `per` seconds, at most `burst` at once,
    on a domain or a job type, with one bucket per `rate_key` when `keyed`."""

    name: str
    """The domain (`media`) or job type (`media::resize`) it limits."""
    scope: Literal["domain", "type"]
    count: int
    per: float
    burst: int
    keyed: bool = False

    @property
    def interval(self) -> float:
        """Seconds per token."""
        return self.per / self.count

    @property
    def tolerance(self) -> float:
        """Seconds of tokens a full bucket holds (`burst` intervals)."""
        return self.burst * self.interval

    def describe(self) -> str:
        """The limit as people read it: `100/s`, `5/min`, `3 per 2.5 s`."""
        units = {1.0: "s", 60.0: "min", 3600.0: "h", 86400.0: "day"}
        unit = units.get(float(self.per))
        return f"{self.count}/{unit}" if unit else f"{self.count} per {self.per:g} s"

    def bucket(self, rate_key: str | None) -> tuple[str, str]:
        """The bucket a job with this `rate_key` takes its tokens from."""
        return (self.name, (rate_key or "") if self.keyed else "")

    def tokens(self, tat: float | None, now: float) -> float:
        """Tokens a bucket whose theoretical arrival time is `tat` holds at `now`."""
        if tat is None or tat <= now:
            return float(self.burst)
        return max(0.0, (self.tolerance - (tat - now)) / self.interval)
