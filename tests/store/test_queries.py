"""Store conformance: queries."""

from __future__ import annotations

import pytest

from wireframe.store import JobState, Store

from store_support import claim_one, complete, fail, job, submit

pytestmark = pytest.mark.anyio


async def test_get_lists_outstanding_dependencies(store: Store) -> None:
    a = await submit(store, type="a::t")
    b = await submit(store, type="a::t")
    c = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(c, a, b, a))
    record = await store.get(job_id)
    assert record is not None and record.depends_on == (a, b, c)
    claimed = await claim_one(store, a, limit=1, domains=("a",))
    await complete(store, claimed.lease)
    record = await store.get(job_id)
    assert record is not None and record.depends_on == (b, c)


async def test_list_jobs_filters(store: Store, clock) -> None:
    a1 = await submit(store, type="a::x")
    a2 = await submit(store, type="a::y")
    b1 = await submit(store, type="b::x", run_at=clock.now + 10)
    parent = await submit(store, type="p::t")
    parent_rec = await claim_one(store, parent, domains=("p",))
    [kid] = await store.submit([job("c::t", parent_id=parent)])

    async def ids(**kw: object) -> list[int]:
        return [j.id for j in await store.list_jobs(**kw)]  # type: ignore[arg-type]

    assert await ids() == [a1, a2, b1, parent, kid.id]
    assert await ids(states=[JobState.SCHEDULED, JobState.RUNNING]) == [b1, parent]
    assert await ids(domain="a") == [a1, a2]
    assert await ids(type="a::y") == [a2]
    assert await ids(domain="a", type="b::x") == []
    assert await ids(parent_id=parent) == [kid.id]
    assert await ids(limit=2) == [a1, a2]
    assert await ids(limit=2, offset=2) == [b1, parent]
    assert await ids(newest_first=True, limit=2) == [kid.id, parent]
    assert parent_rec.id == parent


async def test_counts(store: Store) -> None:
    await store.submit([job("a::x"), job("a::x"), job("a::y"), job("b::x")])
    failing = await claim_one(store, 3, limit=1, domains=("a",), exclude_types=("a::x",))
    await fail(store, failing.lease)
    assert await store.counts() == {
        ("a", "a::x", JobState.PENDING): 2,
        ("a", "a::y", JobState.FAILED): 1,
        ("b", "b::x", JobState.PENDING): 1,
    }


async def test_attempts_of_unknown_or_unclaimed_job(store: Store) -> None:
    assert await store.attempts(424_242) == []
    job_id = await submit(store)
    assert await store.attempts(job_id) == []


def test_job_columns_follow_the_record_fields() -> None:
    import attrs

    from wireframe.store import JobRecord
    from wireframe.store.sql.rows import JOB_COLUMNS

    columns = [c.strip() for c in JOB_COLUMNS.split(",")]
    fields = [f.name for f in attrs.fields(JobRecord)][: len(columns)]
    renamed = {"on_dep_failure": "on_dependency_failure"}
    assert [renamed.get(c, c) for c in columns] == fields
    assert len(columns) + 1 == len(attrs.fields(JobRecord))  # plus depends_on
