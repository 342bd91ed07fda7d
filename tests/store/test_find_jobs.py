"""Store conformance: keyset pages of jobs (`find_jobs`) and the live view's sample (`activity`)."""

from __future__ import annotations

import pytest

from wireframe.store import JobQuery, JobState, Store

from store_support import claim_one, complete, fail, submit

pytestmark = pytest.mark.anyio


async def ids(store: Store, **kw: object) -> list[int]:
    page = await store.find_jobs(JobQuery(**kw))  # type: ignore[arg-type]
    return [j.id for j in page.jobs]


async def test_pages_walk_every_job_newest_first_by_keyset(store: Store) -> None:
    made = [await submit(store, type="a::t") for _ in range(7)]
    seen: list[int] = []
    before = None
    while True:
        page = await store.find_jobs(JobQuery(before=before, limit=3))
        seen += [j.id for j in page.jobs]
        if page.older is None:
            break
        before = page.older
    assert seen == made[::-1]
    # the page before a later page: `after` with the newer cursor lists the newer jobs
    second = await store.find_jobs(JobQuery(before=made[4], limit=3))
    assert [j.id for j in second.jobs] == [made[3], made[2], made[1]]
    assert second.newer is not None
    back = await store.find_jobs(JobQuery(after=second.newer, limit=3))
    assert [j.id for j in back.jobs] == [made[6], made[5], made[4]]
    assert back.newer is None and back.older == made[4]
    first = await store.find_jobs(JobQuery(limit=3))
    assert first.newer is None


async def test_filters_by_state_domain_type_tag_and_text(store: Store) -> None:
    a = await submit(store, type="a::x", tags=("red", "big"), payload='{"path": "/Cat.jpg"}')
    b = await submit(store, type="a::y", key="user-42", payload='{"path": "/dog.jpg"}')
    c = await submit(store, type="b::x", tags=("blue",), payload='{"n": "100%"}')
    d = await submit(store, type="b::x", payload='{"n": 1}')
    record = await claim_one(store, d, domains=("b",))
    await fail(store, record.lease, error="ValueError: Broken pipe")
    e = await submit(store, type="e::x")
    running = await claim_one(store, e, domains=("e",))
    assert await ids(store, states=(JobState.PENDING,)) == [c, b, a]
    assert await ids(store, states=(JobState.FAILED, JobState.RUNNING)) == [e, d]
    assert await ids(store, domain="a") == [b, a]
    assert await ids(store, type="b::x") == [d, c]
    assert await ids(store, domain="a", states=(JobState.PENDING,)) == [b, a]
    assert await ids(store, tag="red") == [a]
    assert await ids(store, tag="re") == []
    assert await ids(store, text="cat.JPG") == [a]
    assert await ids(store, text="USER-42") == [b]
    assert await ids(store, text="broken") == [d]
    assert await ids(store, text="100%") == [c]
    assert await ids(store, text="10_%") == []  # wildcards are taken literally
    assert await ids(store, text="x", states=(JobState.FAILED, JobState.PENDING)) == [d, c, a]
    await complete(store, running.lease)


async def test_a_search_reads_a_bounded_window_and_says_where_it_stopped(store: Store) -> None:
    wanted = await submit(store, type="a::t", payload='{"needle": true}')
    others = [await submit(store, type="a::t") for _ in range(5)]
    page = await store.find_jobs(JobQuery(text="needle", scan=3))
    assert page.jobs == () and page.scanned_to == others[2] and page.older == others[2]
    page = await store.find_jobs(JobQuery(text="needle", scan=3, before=page.older))
    assert [j.id for j in page.jobs] == [wanted]
    # the window was full: whether older jobs exist is known only by reading on
    page = await store.find_jobs(JobQuery(text="needle", scan=3, before=page.older))
    assert page.jobs == () and page.older is None and page.scanned_to is None


async def test_activity_and_active_counts(store: Store, clock) -> None:
    assert (await store.activity(0.0)).latest_id is None
    a = await submit(store, type="c::t")
    await submit(store, type="a::t")
    b = await submit(store, type="b::t", run_at=clock.now + 60)
    record = await claim_one(store, a, domains=("c",))
    since = clock.now
    await complete(store, record.lease)
    sample = await store.activity(since)
    assert await store.active_counts() == {
        ("a", JobState.PENDING): 1,
        ("b", JobState.SCHEDULED): 1,
    }
    assert sample.ended == {("c", JobState.COMPLETED): 1}
    assert sample.latest_id == b
    clock.advance(5)
    assert (await store.activity(clock.now)).ended == {}


def test_a_query_refuses_bad_values_naming_them() -> None:
    with pytest.raises(ValueError, match="limit=0"):
        JobQuery(limit=0)
    with pytest.raises(ValueError, match="not both"):
        JobQuery(before=3, after=1)
    with pytest.raises(ValueError, match="before='x'"):
        JobQuery(before="x")  # type: ignore[arg-type]


async def test_the_hot_paths_keep_their_own_indexes_on_sqlite(tmp_path, anyio_backend) -> None:
    """The browsing indexes are partial on a condition no hot path states: the claim,
    wake-ups, expiry and aging never take them (SQLite did: claims got seven times slower)."""
    import sqlite3

    from wireframe.store import NewJob, SqliteStore

    path = tmp_path / "jobs.db"
    async with SqliteStore(path) as store:
        await store.submit([NewJob(type="d::t", domain="d", payload="{}") for _ in range(100)])
        await store.prepare_browsing()
    hot = [
        "SELECT id FROM jobs WHERE state = 'pending' AND domain IN ('d') AND (expires_at IS NULL"
        " OR expires_at > 1) AND tags IS NULL ORDER BY priority DESC, id LIMIT 64",
        "SELECT id FROM jobs WHERE state IN ('scheduled', 'suspended') AND run_at <= 1",
        "SELECT id FROM jobs WHERE expires_at <= 1 AND expires_at IS NOT NULL"
        " AND state IN ('pending', 'scheduled')",
        "SELECT id FROM jobs WHERE state = 'pending' AND ready_at <= 1 AND priority < 30",
    ]
    conn = sqlite3.connect(path)
    try:
        for sql in hot:
            plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
            assert "jobs_browse" not in plan, (sql, plan)
        browse = (
            "SELECT id FROM jobs WHERE created_at IS NOT NULL AND state = 'failed' "
            "ORDER BY id DESC LIMIT 51"
        )
        plan = " ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {browse}"))
        assert "jobs_browse_state" in plan
    finally:
        conn.close()


async def test_only_a_browsed_store_pays_for_the_browsing_indexes(tmp_path, anyio_backend) -> None:
    """A store gets the browsing indexes (a cost on every state change) only when asked, as the
    dashboard does; asking again changes nothing, and browsing works either way."""
    import sqlite3

    from wireframe.store import JobQuery, NewJob, SqliteStore

    path = tmp_path / "jobs.db"

    def indexes() -> set[str]:
        conn = sqlite3.connect(path)
        try:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")
            return {name for (name,) in rows if name.startswith("jobs_browse")}
        finally:
            conn.close()

    async with SqliteStore(path) as store:
        await store.submit([NewJob(type="d::t", domain="d", payload="{}") for _ in range(5)])
        assert indexes() == set()
        before = await store.find_jobs(JobQuery(limit=10))
        await store.prepare_browsing()
        await store.prepare_browsing()
        assert indexes() == {"jobs_browse_state", "jobs_browse_domain"}
        after = await store.find_jobs(JobQuery(limit=10))
    assert [j.id for j in before.jobs] == [j.id for j in after.jobs] == [5, 4, 3, 2, 1]
