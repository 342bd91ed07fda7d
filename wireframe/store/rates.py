"""Rate limits as the stores enforce them: the policy a claim carries and the GCRA arithmetic.

The policy travels in the `ClaimRequest` (`ClaimRequest.rates`): each worker knows its app's
domains and job types, so the store needs no registry of them. The state lives in the store's
own database (`rate_buckets`: one theoretical arrival time per limit and key, the Generic Cell
Rate Algorithm) and every claim reads and moves it in its own transaction, so any number of
workers together never exceed a limit. Workers should declare the same limits: a claim applies
the limits its own request names.

A job takes `cost` tokens from every limit that applies to it (its domain's and its type's);
a limit declared with a key has one bucket per value of the job's stored `rate_key`. A job a
limit holds back stays pending, takes no slot and gets a `reason` naming the limit and when its
next token is due; the claim goes on with other keys, types and domains. Within one bucket a
held job is not overtaken: a costly job is not starved by cheap ones behind it.

`RateLimit`, the value a claim carries, is defined in `wireframe.store.ratelimit` (which the
records import without importing this module) and re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from wireframe.store.ratelimit import RateLimit as RateLimit
from wireframe.store.records import JobRecord

EPSILON = 1e-9
"""Slack on the arithmetic of times (floating point sums of intervals)."""

RATE_REASON = "rate limited by "
"""How the reason of every job a rate limit holds begins."""


def describe_wait(seconds: float) -> str:
    """`40 ms`, `2.5 s`: how long until a token is due."""
    if seconds < 10.0:
        return f"{max(0, round(seconds * 1000))} ms"
    return f"{seconds:.1f} s"


def hold_reason(limit: RateLimit, key: str, wait: float) -> str:
    """`rate limited by media: 100/s, next token in 40 ms` (with the key of a keyed limit)."""
    named = f"{limit.name} (key {key!r})" if limit.keyed else limit.name
    return f"{RATE_REASON}{named}: {limit.describe()}, next token in {describe_wait(wait)}"


def stable_part(reason: str) -> str:
    """A hold reason without its changing wait: what says the job waits for the same limit."""
    return reason.partition(", next token in ")[0]


@attrs.frozen
class Candidate:
    """What the gate needs of a pending job: where it belongs, its key and its cost."""

    id: int
    domain: str
    type: str
    rate_key: str | None
    cost: int


@attrs.frozen
class RateState:
    """A rate limit as the store last applied it, now: how many tokens its emptiest bucket
    holds, how many of its buckets (keys) hold less than one, and how many pending jobs it
    held back when a claim last looked at them (`Store.rate_limits`)."""

    limit: RateLimit
    tokens: float
    exhausted: int
    held: int


def state_of(limit: RateLimit, tats: Iterable[float], now: float, held: int) -> RateState:
    """The `RateState` of `limit` whose buckets that are not full have arrival times `tats`."""
    levels = [limit.tokens(tat, now) for tat in tats]
    return RateState(
        limit,
        min(levels, default=float(limit.burst)),
        sum(1 for level in levels if level < 1.0 - EPSILON),
        held,
    )


def held_by(limit_name: str, reason: str | None) -> bool:
    """True if `reason` says the rate limit `limit_name` holds the job back."""
    if reason is None or not reason.startswith(RATE_REASON):
        return False
    rest = reason[len(RATE_REASON) :]
    return rest.startswith((f"{limit_name}:", f"{limit_name} (key "))


class Claimed(list[JobRecord]):
    """The jobs a claim leased, and how long until a job its rate limits held may be taken.

    `retry_in` is in seconds (None: no job was held): a worker with free slots claims again
    then, rather than at its next poll.
    """

    retry_in: float | None = None


class Gate:
    """One claim's view of its rate limits: who may be taken now, in candidate order.

    Built from the buckets' stored arrival times; `admit` decides, `commit` says what to store
    for the jobs actually leased (a chooser may take fewer than were admitted).
    """

    def __init__(
        self, limits: Sequence[RateLimit], tats: Mapping[tuple[str, str], float], now: float
    ) -> None:
        self.now = now
        self.by_domain = {lim.name: lim for lim in limits if lim.scope == "domain"}
        self.by_type = {lim.name: lim for lim in limits if lim.scope == "type"}
        self.base = {b: max(t, now) for b, t in tats.items()}
        self.used: dict[tuple[str, str], int] = {}
        self.blocked: set[tuple[str, str]] = set()
        self.held: dict[int, str] = {}
        """The reason of every job held back, by id."""
        self.retry_in: float | None = None

    @property
    def active(self) -> bool:
        """True if any limit applies to the request's jobs."""
        return bool(self.by_domain or self.by_type)

    def limits_of(self, domain: str, type: str) -> list[RateLimit]:
        """The limits a job of this domain and type takes tokens from."""
        found = []
        if (lim := self.by_domain.get(domain)) is not None:
            found.append(lim)
        if (lim := self.by_type.get(type)) is not None:
            found.append(lim)
        return found

    def _after(self, limit: RateLimit, bucket: tuple[str, str], cost: int) -> float:
        """The bucket's arrival time once `cost` more tokens are taken from it."""
        base = self.base.get(bucket, self.now)
        return base + (self.used.get(bucket, 0) + cost) * limit.interval

    def exhausted(self) -> list[tuple[RateLimit, str]]:
        """The buckets with less than one token now (a claim need not look at their jobs)."""
        out = []
        for (name, key), base in self.base.items():
            limit = self.by_domain.get(name) or self.by_type.get(name)
            if limit is not None and base + limit.interval - self.now > limit.tolerance + EPSILON:
                out.append((limit, key))
                self._note_wait(base + limit.interval - limit.tolerance - self.now)
        return out

    def _note_wait(self, wait: float) -> None:
        wait = max(wait, 0.001)
        self.retry_in = wait if self.retry_in is None else min(self.retry_in, wait)

    def admit(self, job: Candidate) -> bool:
        """Take the job's tokens if every limit on it has them; else note why it waits."""
        limits = self.limits_of(job.domain, job.type)
        if not limits:
            return True
        buckets = [(lim, lim.bucket(job.rate_key)) for lim in limits]
        for lim, bucket in buckets:
            if job.cost > lim.burst:  # submission refuses it; a worker's limit may differ
                self.held[job.id] = (
                    f"{RATE_REASON}{lim.name}: costs {job.cost} tokens, more than its burst "
                    f"of {lim.burst}; it can never run under this limit"
                )
                return False
            after = self._after(lim, bucket, job.cost)
            wait = after - lim.tolerance - self.now
            if bucket in self.blocked or wait > EPSILON:
                self.blocked.add(bucket)
                wait = max(wait, 0.0)
                self.held[job.id] = hold_reason(lim, bucket[1], wait)
                self._note_wait(wait)
                return False
        for _, bucket in buckets:
            self.used[bucket] = self.used.get(bucket, 0) + job.cost
        return True

    def commit(self, leased: Iterable[Candidate]) -> dict[tuple[str, str], float]:
        """The new arrival time of every bucket the leased jobs took tokens from."""
        spent: dict[tuple[str, str], tuple[RateLimit, int]] = {}
        for job in leased:
            for lim in self.limits_of(job.domain, job.type):
                bucket = lim.bucket(job.rate_key)
                prior = spent.get(bucket, (lim, 0))[1]
                spent[bucket] = (lim, prior + job.cost)
        return {
            bucket: self.base.get(bucket, self.now) + cost * lim.interval
            for bucket, (lim, cost) in spent.items()
        }


def claimed(jobs: Iterable[JobRecord], retry_in: float | None) -> Claimed:
    """A `Claimed` list of `jobs`."""
    out = Claimed(jobs)
    out.retry_in = retry_in
    return out
