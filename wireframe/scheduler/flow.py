"""Rate limits on domains and job types: `Rate`, and what they add to a submission and a claim.

`Domain("media", rate=Rate(100, per=1.0, burst=20))` lets every worker together start at most
100 of the domain's jobs a second, 20 at once after a quiet spell; `rate=` on a job type limits
that type alone (a job of it then needs a token from both). `rate_key=lambda payload: ...`
gives each key (a tenant, say) a limit of its own; `cost=` (an int, or a callable of the
payload) makes a job take more than one token. The store enforces them (`wireframe.store.rates`):
the policy travels with each worker's claims, the buckets live in the store's database.

A job type has at most one key: its own `rate_key`, else its domain's. A type's `rate_key`
without a `rate` of its own keys its domain's limit for that type's payloads.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol

import attrs

from wireframe.scheduler._numbers import count, seconds
from wireframe.scheduler.errors import ConfigError
from wireframe.store.rates import RateLimit

__all__ = ["Cost", "Rate", "RateKey"]

RateKey = Callable[[Any], str]
"""A payload -> key callable: jobs with one key share a bucket of a keyed limit."""
Cost = int | Callable[[Any], int]
"""Tokens a job takes: an int, or a payload -> int callable."""


@attrs.frozen(init=False)
class Rate:
    """At most `count` jobs per `per` seconds, at most `burst` at once (default: `count`)."""

    count: int
    per: float
    burst: int

    def __init__(self, count: int, per: float = 1.0, burst: int | None = None) -> None:
        where = f"Rate({count!r}, per={per!r}, burst={burst!r})"
        n = _count(count, f"{where}: count")
        period = seconds(per, f"{where}: per")
        size = n if burst is None else _count(burst, f"{where}: burst")
        self.__attrs_init__(n, period, size)

    def limit(self, name: str, scope: Literal["domain", "type"], keyed: bool) -> RateLimit:
        """This rate as the store enforces it on the domain or job type `name`."""
        return RateLimit(name, scope, self.count, self.per, self.burst, keyed)


def _count(value: object, where: str) -> int:
    return count(value, where)


def check_rate(value: object, *, where: str) -> Rate | None:
    """`value` if it is a Rate or None; ConfigError naming `where` otherwise."""
    if value is not None and not isinstance(value, Rate):
        raise ConfigError(f"{where} must be a Rate(count, per=, burst=) or None, got {value!r}")
    return value


def check_rate_key(value: object, *, where: str) -> RateKey | None:
    """`value` if it is a callable of one argument (the payload) or None."""
    if value is None:
        return None
    if not callable(value):
        raise ConfigError(f"{where} must be a callable payload -> str, got {value!r}")
    try:
        params = inspect.signature(value).parameters
    except (TypeError, ValueError):  # a builtin without a signature: trust it
        return value
    if len(params) != 1:
        raise ConfigError(f"{where} must take exactly one argument (the payload), got {value!r}")
    return value


def check_cost(value: object, *, where: str, rates: Iterable[Rate | None] = ()) -> Cost:
    """`value` if it is an int >= 1 (no more than any of `rates`' bursts) or a callable."""
    if callable(value):
        return check_rate_key(value, where=where)  # type: ignore[return-value]
    cost = count(value, where)
    for rate in rates:
        if rate is not None and cost > rate.burst:
            raise ConfigError(
                f"{where}: a cost of {cost} tokens exceeds the burst of {rate} ({rate.burst}); "
                f"such a job could never run"
            )
    return cost


@attrs.frozen
class Flow:
    """The rate limits on one job type, and how its submissions pick their bucket and cost."""

    limits: tuple[RateLimit, ...] = ()
    rates: tuple[Rate, ...] = ()
    key: RateKey | None = None
    cost: Cost = 1

    @property
    def limited(self) -> bool:
        """True if any limit applies."""
        return bool(self.limits)


class DomainFlow(Protocol):
    """What a job type's flow takes of its domain (a `Domain`): its name, rate, key and cost."""

    @property
    def name(self) -> str:
        """The domain's name."""
        ...

    @property
    def rate(self) -> Rate | None:
        """Its rate limit (or None)."""
        ...

    @property
    def rate_key(self) -> RateKey | None:
        """Its rate's key callable (or None)."""
        ...

    @property
    def cost(self) -> Cost:
        """Tokens each of its jobs takes by default."""
        ...


class HasFlow(Protocol):
    """Anything with a `Flow`: a `JobType`."""

    @property
    def flow(self) -> Flow:
        """Its rate limits, and its jobs' rate key and cost."""
        ...


def type_flow(
    domain: DomainFlow, type_name: str, rate: object, rate_key: object, cost: object
) -> Flow:
    """The flow of a job type being registered in `domain` (checked: ConfigError naming it)."""
    own = check_rate(rate, where=f"{type_name} rate")
    key = check_rate_key(rate_key, where=f"{type_name} rate_key")
    if key is not None and own is None and domain.rate_key is None:
        raise ConfigError(
            f"{type_name}: rate_key needs a rate= on the type, or a keyed rate on domain "
            f"{domain.name!r} for it to key"
        )
    if key is not None and own is not None and domain.rate_key is not None:
        raise ConfigError(
            f"{type_name}: the type and its domain {domain.name!r} both have a keyed rate; a job "
            f"has one rate_key (drop one of them)"
        )
    rates = tuple(r for r in (domain.rate, own) if r is not None)
    limits: list[RateLimit] = []
    if domain.rate is not None:
        limits.append(domain.rate.limit(domain.name, "domain", domain.rate_key is not None))
    if own is not None:
        limits.append(own.limit(type_name, "type", key is not None))
    chosen = domain.cost if cost is None else cost
    return Flow(
        tuple(limits),
        rates,
        key if key is not None else domain.rate_key,
        check_cost(chosen, where=f"{type_name} cost", rates=rates),
    )


def submitted(job_type: HasFlow, payload: object, *, where: str) -> tuple[str | None, int]:
    """The `rate_key` and `cost` a submission of `job_type` stores (ConfigError if bad)."""
    flow = job_type.flow
    if not flow.limited:
        return None, 1
    rate_key = None
    if flow.key is not None:
        rate_key = flow.key(payload)
        if not isinstance(rate_key, str) or not rate_key:
            raise ConfigError(
                f"{where}: the rate_key callable returned {rate_key!r}; it must return a "
                f"non-empty str"
            )
    cost = flow.cost
    if callable(cost):
        value = cost(payload)
        try:
            cost = check_cost(value, where=f"{where}: the cost callable's value", rates=flow.rates)
        except ConfigError as exc:
            raise ConfigError(f"{exc} (it returned {value!r})") from None
        assert isinstance(cost, int)
    return rate_key, cost


def rate_limits(job_types: Iterable[HasFlow]) -> tuple[RateLimit, ...]:
    """Every limit on these job types, once each (what a worker's claims carry)."""
    found: dict[str, RateLimit] = {}
    for job_type in job_types:
        for limit in job_type.flow.limits:
            found.setdefault(limit.name, limit)
    return tuple(sorted(found.values(), key=lambda lim: lim.name))


def rate_settings(flow: Flow) -> dict[str, Any]:
    """A job type's rate limits as JSON settings (`wireframe types`, `wireframe submit`): each
    limit's policy, whether its jobs' rate key comes from the payload, and their cost (None
    when the payload decides it)."""
    if not flow.limited:
        return {}
    return {
        "rate_limits": [attrs.asdict(lim) for lim in flow.limits],
        "rate_key": flow.key is not None,
        "cost": None if callable(flow.cost) else flow.cost,
    }


def recorded_rate_fields(settings: dict[str, Any], type_name: str) -> tuple[str | None, int]:
    """The `rate_key` and `cost` of a submission made without the app's code, from its type's
    recorded settings; ConfigError if its code would derive them from the payload."""
    if not settings.get("rate_limits"):
        return None, 1
    if settings.get("rate_key") or settings.get("cost") is None:
        what = "rate key" if settings.get("rate_key") else "cost"
        raise ConfigError(
            f"{type_name} derives its {what} from the payload in the app's code: pass --app "
            f"so the job joins the right rate limit bucket"
        )
    return None, int(settings["cost"])
