"""Store conformance: recurring schedules."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import anyio
import pytest

from wireframe.store import (
    Fired,
    InvalidTransitionError,
    JobRecord,
    JobState,
    NewSchedule,
    Overlap,
    PostgresStore,
    ScheduleRecord,
    SqliteStore,
    Store,
    Submitted,
    UnknownJobError,
)
from wireframe.store.engine import EngineStore
from wireframe.store.sql.tx import Tx

from pg_support import drop_schema, new_schema_name, require_pg
from store_support import claim, claim_ids, claim_one, complete, fail, job, run, state, states

pytestmark = pytest.mark.anyio

EVERY = '{"every": 60}'


async def recurring(
    store: Store,
    clock,
    max_occurrences: int | None = None,
    overlap: str = "skip",
    **kw: object,
) -> Submitted:
    """Submit a job recurring every 60 s; the next occurrence is due in 60 s."""
    schedule = NewSchedule(EVERY, clock.now + 60, max_occurrences, overlap)
    [result] = await store.submit([job(recurring=schedule, payload='{"n": 1}', **kw)])
    assert isinstance(result, Submitted) and result.schedule_id is not None
    return result


async def fire_next(store: Store, clock, schedule_id: int) -> JobRecord:
    """Fire the schedule's occurrence due now (the next one 60 s later); return its job."""
    fired = await store.fire_schedule(schedule_id, clock.now, clock.now + 60)
    assert fired is not None and fired.job_id is not None
    record = await store.get(fired.job_id)
    assert record is not None
    return record


async def test_submit_creates_a_schedule_and_its_first_job(store: Store, clock) -> None:
    sub = await recurring(store, clock, priority=3)
    assert sub.schedule_id is not None
    sched = await store.get_schedule(sub.schedule_id)
    assert sched is not None
    assert (sched.type, sched.domain, sched.spec, sched.state) == ("d::t", "d", EVERY, "active")
    assert (sched.next_run_at, sched.occurrences, sched.last_job_id) == (clock.now + 60, 1, sub.id)
    first = await store.get(sub.id)
    assert first is not None
    assert first.state is JobState.PENDING and first.schedule_id == sub.schedule_id
    assert await store.schedules() == [sched]


async def test_due_schedules(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    await recurring(store, clock, type="other::t")
    assert await store.due_schedules(["d"]) == []
    clock.advance(60)
    due = await store.due_schedules(["d"])
    assert [s.id for s in due] == [sub.schedule_id]
    assert len(await store.due_schedules(["d", "other"])) == 2
    assert await store.due_schedules([]) == []


async def test_fire_exactly_once_per_expected_time(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    sid = sub.schedule_id
    assert sid is not None
    await run(store, sub.id)
    clock.advance(60)
    fired = await store.fire_schedule(sid, clock.now, clock.now + 60)
    assert fired is not None and not fired.skipped and fired.job_id is not None
    assert await store.fire_schedule(sid, clock.now, clock.now + 60) is None
    record = await store.get(fired.job_id)
    assert record is not None
    assert record.payload == '{"n": 1}' and record.priority == 10
    assert record.schedule_id == sid and record.run_at == clock.now
    sched = await store.get_schedule(sid)
    assert sched is not None
    assert (sched.occurrences, sched.last_job_id, sched.next_run_at) == (
        2,
        fired.job_id,
        clock.now + 60,
    )
    assert await store.due_schedules(["d"]) == []


async def test_fire_with_a_stale_expected_time_does_nothing(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    assert sub.schedule_id is not None
    clock.advance(60)
    assert await store.fire_schedule(sub.schedule_id, clock.now - 1, clock.now + 60) is None
    assert await store.fire_schedule(424_242, clock.now, clock.now + 60) is None
    assert len(await store.list_jobs()) == 1


async def fire(store: Store, clock, schedule_id: int) -> Fired | None:
    """Move to the schedule's next occurrence and fire it (the following one 60 s later)."""
    clock.advance(60)
    return await store.fire_schedule(schedule_id, clock.now, clock.now + 60)


async def schedule_of(store: Store, schedule_id: int) -> ScheduleRecord:
    record = await store.get_schedule(schedule_id)
    assert record is not None
    return record


async def test_skip_while_the_previous_run_has_not_ended(store: Store, clock) -> None:
    sub = await recurring(store, clock, max_attempts=2)
    sid = sub.schedule_id
    assert sid is not None
    assert (await schedule_of(store, sid)).overlap is Overlap.SKIP  # the default
    skipped = Fired(None, skipped=True, active_job_id=sub.id)
    # Waiting for a worker, running, failed and waiting for its retry, running again: the run
    # has not ended, so every firing is skipped, counted, and moves the schedule on.
    assert await fire(store, clock, sid) == skipped
    claimed = await claim_one(store, sub.id)
    assert await fire(store, clock, sid) == skipped
    assert await fail(store, claimed.lease, retry_at=clock.now + 30)
    assert await fire(store, clock, sid) == skipped
    again = await claim_one(store, sub.id)
    assert await fire(store, clock, sid) == skipped
    sched = await schedule_of(store, sid)
    assert (sched.skipped, sched.last_skipped_at, sched.occurrences) == (4, clock.now, 1)
    assert sched.next_run_at == clock.now + 60 and sched.state == "active"
    assert [j.id for j in await store.list_jobs()] == [sub.id]
    # Once it ends, the next firing (not a burst of the skipped ones) creates a job.
    assert await complete(store, again.lease)
    assert await store.due_schedules(["d"]) == []
    fired = await fire(store, clock, sid)
    assert fired is not None and fired.job_id is not None and fired.active_job_id is None
    assert await state(store, fired.job_id) is JobState.PENDING
    sched = await schedule_of(store, sid)
    assert (sched.skipped, sched.occurrences, sched.last_job_id) == (4, 2, fired.job_id)


async def test_skip_ends_with_the_run_however_it_ends(store: Store, clock) -> None:
    # Three schedules: the first run of one fails, of one is cancelled, of one expires.
    failed, cancelled, expired = [
        await recurring(store, clock, expires_at=clock.now + 30, type=f"d::{name}")
        for name in ("failed", "cancelled", "expired")
    ]
    claimed = await claim(store, limit=1)
    assert [j.id for j in claimed] == [failed.id]
    assert await fail(store, claimed[0].lease)
    await store.cancel(cancelled.id)
    clock.advance(31)
    assert await claim_ids(store) == []
    for sub in (failed, cancelled, expired):
        assert (await store.get(sub.id)).terminal  # type: ignore[union-attr]
        assert sub.schedule_id is not None
        due = await schedule_of(store, sub.schedule_id)
        assert due.next_run_at is not None
        fired = await store.fire_schedule(due.id, due.next_run_at, due.next_run_at + 60)
        assert fired is not None and fired.job_id is not None
        assert (await schedule_of(store, due.id)).skipped == 0


async def test_a_skipped_last_firing_finishes_the_schedule(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    sid = sub.schedule_id
    assert sid is not None
    clock.advance(60)
    assert await store.fire_schedule(sid, clock.now, None) == Fired(None, True, sub.id)
    sched = await schedule_of(store, sid)
    assert (sched.state, sched.next_run_at, sched.skipped) == ("finished", None, 1)


async def test_queue_keeps_one_occurrence_behind_the_active_run(store: Store, clock) -> None:
    sub = await recurring(store, clock, overlap="queue")
    sid = sub.schedule_id
    assert sid is not None
    assert (await schedule_of(store, sid)).overlap is Overlap.QUEUE
    first = await claim_one(store, sub.id)
    fired = await fire(store, clock, sid)
    assert fired is not None and fired.job_id is not None and fired.active_job_id == sub.id
    queued = fired.job_id
    record = await store.get(queued)
    assert record is not None
    assert (record.state, record.depends_on) == (JobState.BLOCKED, (sub.id,))
    # While one waits, further firings are skipped: never more than one behind the run.
    for count in (1, 2):
        assert await fire(store, clock, sid) == Fired(None, skipped=True, active_job_id=queued)
        assert (await schedule_of(store, sid)).skipped == count
    assert len(await store.list_jobs()) == 2
    # The run fails (for good): the queued occurrence still runs, and its own run may now
    # have the next one queued behind it.
    assert await fail(store, first.lease)
    assert await state(store, queued) is JobState.PENDING
    second = await claim_one(store, queued)
    fired = await fire(store, clock, sid)
    assert fired is not None and fired.job_id is not None and fired.active_job_id == queued
    assert await state(store, fired.job_id) is JobState.BLOCKED
    assert await complete(store, second.lease)
    assert await claim_ids(store) == [fired.job_id]
    sched = await schedule_of(store, sid)
    assert (sched.occurrences, sched.skipped, sched.last_job_id) == (3, 2, fired.job_id)


async def test_queue_skips_while_the_previous_occurrence_waits_to_start(
    store: Store, clock
) -> None:
    sub = await recurring(store, clock, overlap="queue")
    sid = sub.schedule_id
    assert sid is not None
    assert await fire(store, clock, sid) == Fired(None, skipped=True, active_job_id=sub.id)
    assert len(await store.list_jobs()) == 1
    await run(store, sub.id)
    fired = await fire(store, clock, sid)
    assert fired is not None and fired.job_id is not None and fired.active_job_id is None
    assert await state(store, fired.job_id) is JobState.PENDING


async def test_allow_submits_every_firing(store: Store, clock) -> None:
    sub = await recurring(store, clock, overlap="allow")
    sid = sub.schedule_id
    assert sid is not None
    await claim_one(store, sub.id)
    ids = [sub.id]
    for _ in range(2):  # the first one runs, the second waits for a worker: both still active
        fired = await fire(store, clock, sid)
        assert fired is not None and fired.job_id is not None and not fired.skipped
        ids.append(fired.job_id)
    assert await states(store, *ids) == [JobState.RUNNING, JobState.PENDING, JobState.PENDING]
    sched = await schedule_of(store, sid)
    assert (sched.overlap, sched.occurrences, sched.skipped) == (Overlap.ALLOW, 3, 0)
    assert sched.last_skipped_at is None


def test_a_schedule_refuses_an_unknown_overlap() -> None:
    with pytest.raises(ValueError, match=r"overlap='sometimes' must be one of skip, queue, allow"):
        NewSchedule(EVERY, 1.0, overlap="sometimes")


async def test_max_occurrences(store: Store, clock) -> None:
    sub = await recurring(store, clock, max_occurrences=2)
    sid = sub.schedule_id
    assert sid is not None
    await run(store, sub.id)
    clock.advance(60)
    fired = await store.fire_schedule(sid, clock.now, clock.now + 60)
    assert fired is not None and fired.job_id is not None
    sched = await store.get_schedule(sid)
    assert sched is not None
    assert (sched.state, sched.occurrences, sched.next_run_at) == ("finished", 2, None)
    clock.advance(60)
    assert await store.due_schedules(["d"]) == []
    assert await store.fire_schedule(sid, clock.now, clock.now + 60) is None


async def test_single_occurrence_schedule_is_finished_at_once(store: Store, clock) -> None:
    sub = await recurring(store, clock, max_occurrences=1)
    assert sub.schedule_id is not None
    sched = await store.get_schedule(sub.schedule_id)
    assert sched is not None and sched.state == "finished"


async def test_pause_and_resume_a_schedule(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    sid = sub.schedule_id
    assert sid is not None
    paused = await store.set_schedule_state(sid, "paused")
    assert paused.state == "paused"
    clock.advance(120)
    assert await store.due_schedules(["d"]) == []
    assert await store.fire_schedule(sid, clock.now - 60, clock.now) is None
    resumed = await store.set_schedule_state(sid, "active", clock.now + 30)
    assert (resumed.state, resumed.next_run_at) == ("active", clock.now + 30)
    assert await store.due_schedules(["d"]) == []
    clock.advance(30)
    assert [s.id for s in await store.due_schedules(["d"])] == [sid]


async def test_cancel_schedule_drops_an_unstarted_occurrence(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    sid = sub.schedule_id
    assert sid is not None
    cancelled = await store.set_schedule_state(sid, "cancelled")
    assert cancelled.state == "cancelled"
    assert await state(store, sub.id) is JobState.CANCELLED
    clock.advance(60)
    assert await store.due_schedules(["d"]) == []
    with pytest.raises(InvalidTransitionError):
        await store.set_schedule_state(sid, "active", clock.now)


async def test_cancel_schedule_keeps_a_started_occurrence(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    assert sub.schedule_id is not None
    await claim_one(store, sub.id)
    await store.set_schedule_state(sub.schedule_id, "cancelled")
    assert await state(store, sub.id) is JobState.RUNNING


async def test_schedule_state_errors(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    assert sub.schedule_id is not None
    with pytest.raises(UnknownJobError, match="schedule"):
        await store.set_schedule_state(424_242, "paused")
    with pytest.raises(ValueError, match="bogus"):
        await store.set_schedule_state(sub.schedule_id, "bogus")
    sched = await store.get_schedule(sub.schedule_id)
    assert sched is not None and sched.state == "active"
    assert await store.get_schedule(424_242) is None


async def test_occurrences_keep_tags_and_parentless_template(store: Store, clock) -> None:
    sub = await recurring(store, clock, tags=("gpu",), resources={"gpu": 1}, max_attempts=4)
    assert sub.schedule_id is not None
    await store.cancel(sub.id)
    clock.advance(60)
    fired = await store.fire_schedule(sub.schedule_id, clock.now, clock.now + 60)
    assert fired is not None and fired.job_id is not None
    record = await store.get(fired.job_id)
    assert record is not None
    assert record.tags == ("gpu",) and dict(record.resources) == {"gpu": 1}
    assert record.max_attempts == 4


async def test_first_occurrence_in_the_future(store: Store, clock) -> None:
    schedule = NewSchedule(EVERY, clock.now + 120)
    [result] = await store.submit([job(recurring=schedule, run_at=clock.now + 60)])
    assert isinstance(result, Submitted)
    assert await state(store, result.id) is JobState.SCHEDULED


async def test_every_occurrence_expires_ttl_after_its_own_run_time(store: Store, clock) -> None:
    sub = await recurring(store, clock, expires_at=clock.now + 30)
    sid = sub.schedule_id
    assert sid is not None
    first = await store.get(sub.id)
    assert first is not None and first.expires_at == first.run_at + 30
    await run(store, sub.id)
    clock.advance(60)
    fired = await store.fire_schedule(sid, clock.now, clock.now + 60)
    assert fired is not None and fired.job_id is not None
    second = await store.get(fired.job_id)
    assert second is not None
    assert (second.run_at, second.expires_at) == (clock.now, clock.now + 30)
    clock.advance(30)
    assert await claim_ids(store) == []
    assert await state(store, fired.job_id) is JobState.EXPIRED
    clock.advance(30)
    again = await store.fire_schedule(sid, clock.now, clock.now + 60)
    assert again is not None and again.job_id is not None
    third = await store.get(again.job_id)
    assert third is not None and third.expires_at == clock.now + 30
    clock.advance(29)
    assert await claim_ids(store) == [again.job_id]


async def test_ttl_is_relative_to_a_future_first_occurrence(store: Store, clock) -> None:
    schedule = NewSchedule(EVERY, clock.now + 120)
    [result] = await store.submit(
        [job(recurring=schedule, run_at=clock.now + 60, expires_at=clock.now + 70)]
    )
    assert isinstance(result, Submitted) and result.schedule_id is not None
    clock.advance(60)
    await run(store, result.id)
    clock.advance(60)
    fired = await store.fire_schedule(result.schedule_id, clock.now, clock.now + 60)
    assert fired is not None and fired.job_id is not None
    record = await store.get(fired.job_id)
    assert record is not None and record.expires_at == clock.now + 10


async def test_occurrences_without_ttl_never_expire(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    assert sub.schedule_id is not None
    await run(store, sub.id)
    clock.advance(60)
    record = await fire_next(store, clock, sub.schedule_id)
    assert record.expires_at is None


async def test_a_schedule_stored_before_ttls_were_kept_fires_without_a_ttl(
    store: Store, clock
) -> None:
    if not isinstance(store, EngineStore):
        pytest.skip("rewrites a schedules row: only SQL stores have templates from before ttls")
    sub = await recurring(store, clock, expires_at=clock.now + 30)
    assert sub.schedule_id is not None
    await cast(EngineStore, store)._op(_as_before_ttls_were_kept, sub.schedule_id)
    await run(store, sub.id)
    clock.advance(60)
    record = await fire_next(store, clock, sub.schedule_id)
    assert record.expires_at is None
    clock.advance(3600)
    assert await claim_ids(store) == [record.id]


def _as_before_ttls_were_kept(tx: Tx, now: float, schedule_id: int) -> None:
    """Rewrite a schedule's template the way earlier versions stored it: without a ttl, and with
    the first occurrence's absolute expiry time."""
    [text] = tx.execute("SELECT template FROM schedules WHERE id = ?", (schedule_id,)).fetchone()
    template = json.loads(text)
    template.pop("ttl", None)
    template["expires_at"] = now + 30
    tx.execute(
        "UPDATE schedules SET template = ? WHERE id = ?", (json.dumps(template), schedule_id)
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def two_stores(
    request: pytest.FixtureRequest, tmp_path: Path, clock, anyio_backend: str
) -> AsyncIterator[tuple[Store, Store]]:
    """Two stores on one database, as two worker processes have."""
    if request.param == "sqlite":
        path = tmp_path / "jobs.db"
        async with SqliteStore(path, clock=clock) as one, SqliteStore(path, clock=clock) as two:
            yield one, two
        return
    if anyio_backend != "asyncio":
        pytest.skip("the PostgreSQL store is tested under asyncio")
    dsn, name = require_pg(), new_schema_name()
    try:
        async with (
            PostgresStore(dsn, schema=name, clock=clock, pool_size=2) as one,
            PostgresStore(dsn, schema=name, clock=clock, pool_size=2) as two,
        ):
            yield one, two
    finally:
        drop_schema(name)


async def fire_from_both(stores: tuple[Store, Store], schedule_id: int) -> list[Fired | None]:
    """Each store reads the due schedule, then both fire it at once (as two workers would)."""
    results: list[Fired | None] = []
    read = 0
    both_read = anyio.Event()

    async def fire_from(store: Store) -> None:
        nonlocal read
        [due] = await store.due_schedules(["d"])
        assert due.id == schedule_id and due.next_run_at is not None
        read += 1
        if read == 2:
            both_read.set()
        await both_read.wait()
        results.append(await store.fire_schedule(due.id, due.next_run_at, due.next_run_at + 60))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(fire_from, store)
    return results


async def test_two_processes_firing_one_schedule_never_both_submit(
    two_stores: tuple[Store, Store], clock
) -> None:
    one, two = two_stores
    sub = await recurring(one, clock)
    sid = sub.schedule_id
    assert sid is not None
    running = await claim_one(two, sub.id)
    for _ in range(5):
        clock.advance(60)
        results = await fire_from_both(two_stores, sid)
        assert sorted(results, key=repr) == [Fired(None, skipped=True, active_job_id=sub.id), None]
    assert await complete(two, running.lease)
    clock.advance(60)
    results = await fire_from_both(two_stores, sid)
    [fired] = [r for r in results if r is not None]
    assert fired.job_id is not None and None in results
    sched = await schedule_of(one, sid)
    assert (sched.skipped, sched.occurrences, sched.last_job_id) == (5, 2, fired.job_id)
    assert [j.id for j in await two.list_jobs()] == [sub.id, fired.job_id]


async def test_two_processes_firing_a_queue_schedule_queue_one_occurrence(
    two_stores: tuple[Store, Store], clock
) -> None:
    one, two = two_stores
    sub = await recurring(one, clock, overlap="queue")
    sid = sub.schedule_id
    assert sid is not None
    running = await claim_one(two, sub.id)
    clock.advance(60)
    [queued] = [r for r in await fire_from_both(two_stores, sid) if r is not None]
    assert queued.job_id is not None and queued.active_job_id == sub.id
    clock.advance(60)
    results = await fire_from_both(two_stores, sid)
    assert sorted(results, key=repr) == [Fired(None, True, queued.job_id), None]
    assert await complete(two, running.lease)
    assert await claim_ids(one) == [queued.job_id]
    assert len(await one.list_jobs()) == 2
