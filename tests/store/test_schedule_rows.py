"""Store conformance: recurring schedules."""

from __future__ import annotations

import json
from typing import cast

import pytest

from wireframe.store import (
    Fired,
    InvalidTransitionError,
    JobRecord,
    JobState,
    NewSchedule,
    Store,
    Submitted,
    UnknownJobError,
)
from wireframe.store.engine import EngineStore
from wireframe.store.sql.tx import Tx

from store_support import claim_ids, claim_one, job, run, state

pytestmark = pytest.mark.anyio

EVERY = '{"every": 60}'


async def recurring(
    store: Store, clock, max_occurrences: int | None = None, **kw: object
) -> Submitted:
    """Submit a job recurring every 60 s; the next occurrence is due in 60 s."""
    schedule = NewSchedule(EVERY, clock.now + 60, max_occurrences)
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


async def test_skip_while_the_previous_job_has_not_started(store: Store, clock) -> None:
    sub = await recurring(store, clock)
    sid = sub.schedule_id
    assert sid is not None
    clock.advance(60)
    assert await store.fire_schedule(sid, clock.now, clock.now + 60) == Fired(None, skipped=True)
    assert len(await store.list_jobs()) == 1
    sched = await store.get_schedule(sid)
    assert sched is not None and sched.next_run_at == clock.now + 60 and sched.occurrences == 1
    # Once the previous one started, the next occurrence fires.
    claimed = await claim_one(store, sub.id)
    clock.advance(60)
    fired = await store.fire_schedule(sid, clock.now, clock.now + 60)
    assert fired is not None and fired.job_id is not None and claimed.id != fired.job_id


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
