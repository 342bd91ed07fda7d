"""Store conformance: the job types workers record (`record_job_types`, `job_types`)."""

from __future__ import annotations

import pytest

from wireframe.store import JobTypeRecord, NewJobType, Store

pytestmark = pytest.mark.anyio


def new(type: str, payload: str = '{"kind":"any"}', by: str = "w1") -> NewJobType:
    domain, _, name = type.partition("::")
    return NewJobType(type, domain, name, payload, '{"max_attempts":3}', by)


async def test_an_empty_store_has_no_job_types(store: Store) -> None:
    assert await store.job_types() == []
    await store.record_job_types([])
    assert await store.job_types() == []


async def test_recorded_types_are_listed_by_type_and_a_new_record_replaces_the_old(
    store: Store, clock
) -> None:
    await store.record_job_types([new("b::x"), new("a::y")])
    first = clock.now
    assert await store.job_types() == [
        JobTypeRecord("a::y", "a", "y", '{"kind":"any"}', '{"max_attempts":3}', "w1", first),
        JobTypeRecord("b::x", "b", "x", '{"kind":"any"}', '{"max_attempts":3}', "w1", first),
    ]
    clock.advance(5)
    await store.record_job_types([new("a::y", payload='{"kind":"dict"}', by="w2")])
    records = await store.job_types()
    assert [(r.type, r.payload, r.recorded_by, r.recorded_at) for r in records] == [
        ("a::y", '{"kind":"dict"}', "w2", first + 5),
        ("b::x", '{"kind":"any"}', "w1", first),
    ]
