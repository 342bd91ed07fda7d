"""Store conformance: rate limits kept by the store (GCRA buckets) and applied by every claim."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from wireframe.store import JobRecord, JobState, Store
from wireframe.store.rates import Claimed, RateLimit

from store_support import claim, complete, job, request, submit, submit_many

pytestmark = pytest.mark.anyio


def per_second(count: int, burst: int, *, name: str = "d", **kw: object) -> RateLimit:
    """`count` per second on domain `name` (or a type, with scope="type")."""
    return RateLimit(name, kw.pop("scope", "domain"), count, 1.0, burst, **kw)  # type: ignore[arg-type]


async def rated(store: Store, limit: int, *rates: RateLimit, **kw: object) -> list[int]:
    return [j.id for j in await claim(store, limit, rates=rates, **kw)]


async def test_burst_then_one_token_per_interval(store: Store, clock) -> None:
    ids = await submit_many(store, 10)
    rate = per_second(2, 3)
    assert await rated(store, 10, rate) == ids[:3]
    assert await rated(store, 10, rate) == []
    clock.advance(0.5)
    assert await rated(store, 10, rate) == ids[3:4]
    clock.advance(0.25)
    assert await rated(store, 10, rate) == []
    clock.advance(10.0)  # a long quiet spell refills the bucket to its burst, no more
    assert await rated(store, 10, rate) == ids[4:7]


async def test_held_jobs_stay_pending_with_a_reason_and_a_retry_time(store: Store, clock) -> None:
    ids = await submit_many(store, 4)
    rate = per_second(10, 2)
    jobs = await store.claim(request(10, rates=(rate,)))
    assert [j.id for j in jobs] == ids[:2]
    assert isinstance(jobs, Claimed)
    assert jobs.retry_in == pytest.approx(0.1)
    held = await store.get(ids[2])
    assert held is not None and held.state is JobState.PENDING
    assert held.worker_id is None
    assert held.reason == "rate limited by d: 10/s, next token in 100 ms"
    # Once it runs, it no longer waits for a token.
    clock.advance(0.1)
    [taken] = await claim(store, 1, rates=(rate,))
    assert taken.id == ids[2]
    assert taken.reason is None


async def test_every_claim_shares_the_buckets(store: Store, clock) -> None:
    """Two workers together get no more than the limit."""
    await submit_many(store, 10)
    rate = per_second(5, 4)
    first = await rated(store, 3, rate, worker="w1")
    second = await rated(store, 3, rate, worker="w2")
    assert len(first) + len(second) == 4


async def test_other_domains_and_keys_go_ahead_in_the_same_claim(store: Store, clock) -> None:
    # Many jobs of key "a" come first, more than a claim looks at in one go.
    flood = [job(rate_key="a") for _ in range(150)]
    results = await store.submit([*flood, job(rate_key="b"), job(type="e::t")])
    ids = [r.id for r in results]
    rate = per_second(1, 1, keyed=True)
    taken = await rated(store, 10, rate, domains=("d", "e"))
    assert taken == [ids[0], ids[150], ids[151]]
    reason = (await store.get(ids[1])).reason  # type: ignore[union-attr]
    assert reason == "rate limited by d (key 'a'): 1/s, next token in 1000 ms"


async def test_a_bucket_out_of_tokens_does_not_hide_other_keys(store: Store, clock) -> None:
    rate = per_second(1, 1, keyed=True)
    a = await submit_many(store, 100, rate_key="a")
    assert await rated(store, 1, rate) == a[:1]
    b = await submit(store, rate_key="b")
    assert await rated(store, 5, rate) == [b]


async def test_cost_takes_several_tokens_and_is_not_overtaken(store: Store, clock) -> None:
    rate = per_second(1, 3)
    big = await submit(store, cost=3)
    await submit(store)  # small, behind the big one
    assert await rated(store, 5, rate) == [big]
    clock.advance(1.0)  # one token: not enough for a cost-3 job...
    costly = await submit(store, cost=2, priority=50)
    assert await rated(store, 5, rate) == []  # ...and the cheap one behind it waits too
    reason = (await store.get(costly)).reason  # type: ignore[union-attr]
    assert reason == "rate limited by d: 1/s, next token in 1000 ms"
    clock.advance(1.0)
    assert await rated(store, 5, rate) == [costly]


async def test_domain_and_type_limits_both_apply(store: Store, clock) -> None:
    domain = per_second(10, 3)
    kind = per_second(1, 1, name="d::t", scope="type")
    ids = await submit_many(store, 3)
    others = await submit_many(store, 3, type="d::u")
    assert await rated(store, 10, domain, kind) == [ids[0], others[0], others[1]]
    reason = (await store.get(ids[1])).reason  # type: ignore[union-attr]
    assert reason is not None and reason.startswith("rate limited by d::t: 1/s")


async def test_a_chooser_that_declines_a_job_spends_none_of_its_tokens(store: Store, clock) -> None:
    ids = await submit_many(store, 4)
    rate = per_second(1, 2)

    def only_last(candidates: Sequence[JobRecord]) -> list[int]:
        return [candidates[-1].id]

    jobs = await store.claim(request(2, rates=(rate,), scan=2), only_last)
    assert [j.id for j in jobs] == [ids[1]]
    assert await rated(store, 5, rate) == [ids[0]]  # the declined job's token was kept


async def test_rate_key_of_an_unkeyed_limit_is_ignored(store: Store, clock) -> None:
    await store.submit([job(rate_key="a"), job(rate_key="b")])
    assert len(await rated(store, 5, per_second(1, 1))) == 1


async def test_a_job_that_costs_more_than_the_burst_says_so(store: Store, clock) -> None:
    job_id = await submit(store, cost=5)
    assert await rated(store, 5, per_second(10, 2)) == []
    reason = (await store.get(job_id)).reason  # type: ignore[union-attr]
    assert reason is not None and "more than its burst of 2" in reason


async def test_finished_jobs_do_not_give_tokens_back(store: Store, clock) -> None:
    ids = await submit_many(store, 3)
    rate = per_second(1, 1)
    [first] = await claim(store, 5, rates=(rate,))
    assert await complete(store, first.lease)
    assert await rated(store, 5, rate) == []
    clock.advance(1.0)
    assert await rated(store, 5, rate) == ids[1:2]


async def test_claims_without_rates_ignore_the_buckets(store: Store, clock) -> None:
    ids = await submit_many(store, 3)
    assert await rated(store, 1, per_second(1, 1)) == ids[:1]
    assert [j.id for j in await claim(store, 5)] == ids[1:]


async def test_rate_limits_report_tokens_empty_keys_and_held_jobs(store: Store, clock) -> None:
    assert await store.rate_limits() == []
    domain = per_second(4, 2, keyed=True)
    kind = per_second(100, 10, name="d::u", scope="type")
    await store.submit([job(rate_key="a") for _ in range(5)] + [job(rate_key="b")])
    await store.submit([job(type="d::u")])
    await rated(store, 10, domain, kind)
    states = {s.limit.name: s for s in await store.rate_limits()}
    assert states["d"].limit == domain
    assert states["d"].tokens == pytest.approx(0.0)  # key "a" spent its burst
    assert states["d"].exhausted == 1  # key "b" still has a token
    assert states["d"].held == 3
    assert states["d::u"].limit == kind
    assert states["d::u"].tokens == pytest.approx(9.0)
    assert (states["d::u"].exhausted, states["d::u"].held) == (0, 0)
    clock.advance(10.0)
    states = {s.limit.name: s for s in await store.rate_limits()}
    assert states["d"].tokens == pytest.approx(2.0)
    assert states["d"].exhausted == 0


async def test_housekeeping_forgets_full_buckets_only(store: Store, clock) -> None:
    rate = per_second(1, 1, keyed=True)
    await store.submit([job(rate_key=f"k{i}") for i in range(3)] + [job(rate_key="k0")])
    taken = await claim(store, 5, rates=(rate,))
    assert len(taken) == 3
    for leased in taken:
        assert await complete(store, leased.lease)
    clock.advance(3600.0)
    await store.housekeep()
    # Forgotten or not, a full bucket gives its burst: one job of k0 now, none a moment later.
    assert len(await rated(store, 5, rate)) == 1
    assert await rated(store, 5, rate) == []


async def test_a_claim_that_leases_refreshes_the_wait_of_the_jobs_it_holds(
    store: Store, clock
) -> None:
    ids = await submit_many(store, 4)
    rate = per_second(1, 2)
    assert await rated(store, 5, rate) == ids[:2]
    before = (await store.get(ids[3])).reason  # type: ignore[union-attr]
    assert before == "rate limited by d: 1/s, next token in 1000 ms"
    clock.advance(1.5)
    assert await rated(store, 5, rate) == ids[2:3]
    after = (await store.get(ids[3])).reason  # type: ignore[union-attr]
    assert after == "rate limited by d: 1/s, next token in 500 ms"
