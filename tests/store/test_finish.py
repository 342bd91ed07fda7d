"""Store conformance: finishing attempts (complete, fail, retry, release)."""

from __future__ import annotations

import pytest

from wireframe.store import FAR_FUTURE, Complete, Fail, JobState, Lease, NewJob, Release, Store

from store_support import (
    claim,
    claim_ids,
    claim_one,
    complete,
    fail,
    release,
    run,
    state,
    submit,
)

pytestmark = pytest.mark.anyio


async def test_complete_stores_the_result_and_closes_the_attempt(store: Store, clock) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id, worker="w9")
    clock.advance(3)
    assert await complete(store, claimed.lease, '{"answer": 42}')
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.COMPLETED
    assert record.result == '{"answer": 42}'
    assert record.finished_at == clock.now
    assert record.worker_id is None and record.lease_expires_at is None
    [attempt] = await store.attempts(job_id)
    assert (attempt.attempt, attempt.worker_id, attempt.outcome) == (1, "w9", "completed")
    assert attempt.finished_at == clock.now and attempt.started_at == clock.now - 3


async def test_fail_with_retry_at_reschedules_with_a_new_attempt(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=3)
    first = await claim_one(store, job_id)
    assert await fail(store, first.lease, "flaky", retry_at=clock.now + 10, traceback="tb1")
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.SCHEDULED
    assert record.error == "flaky"
    assert record.run_at == clock.now + 10
    assert await store.next_due_at() == clock.now + 10
    clock.advance(9)
    assert await claim_ids(store) == []
    clock.advance(1)
    second = await claim_one(store, job_id)
    assert second.attempt == 2
    assert second.claim_seq > first.claim_seq
    attempts = await store.attempts(job_id)
    assert [(a.attempt, a.outcome, a.error) for a in attempts] == [
        (1, "failed", "flaky"),
        (2, None, None),
    ]


async def test_fail_with_retry_at_now_is_pending_at_once(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=2)
    first = await claim_one(store, job_id)
    assert await fail(store, first.lease, retry_at=clock.now)
    assert await state(store, job_id) is JobState.PENDING
    assert (await claim_one(store, job_id)).attempt == 2


async def test_terminal_failure_keeps_error_and_traceback(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=1)
    claimed = await claim_one(store, job_id)
    assert await fail(store, claimed.lease, "ValueError: bad", traceback="Traceback...\n")
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.FAILED
    assert (record.error, record.traceback) == ("ValueError: bad", "Traceback...\n")
    assert record.finished_at == clock.now
    [attempt] = await store.attempts(job_id)
    assert (attempt.outcome, attempt.error) == ("failed", "ValueError: bad")


async def test_retry_at_is_ignored_once_attempts_are_exhausted(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=2)
    for attempt in (1, 2):
        claimed = await claim_one(store, job_id)
        assert claimed.attempt == attempt
        assert await fail(store, claimed.lease, f"e{attempt}", retry_at=clock.now)
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.FAILED and record.error == "e2"


async def test_fail_outcome_label_is_recorded(store: Store) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    assert await fail(store, claimed.lease, "took too long", outcome="timeout")
    [attempt] = await store.attempts(job_id)
    assert attempt.outcome == "timeout"


async def test_release_to_pending_spends_no_attempt(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=1)
    first = await claim_one(store, job_id)
    assert await release(store, first.lease, "pending", reason="preempted")
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.PENDING and record.reason == "preempted"
    second = await claim_one(store, job_id)
    assert second.attempt == 1
    assert second.claim_seq > first.claim_seq
    assert not await complete(store, first.lease)
    assert await complete(store, second.lease)
    assert await state(store, job_id) is JobState.COMPLETED
    assert len(await store.attempts(job_id)) == 1


async def test_release_with_run_at_waits(store: Store, clock) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    assert await release(store, claimed.lease, "pending", run_at=clock.now + 5)
    assert await claim_ids(store) == []
    clock.advance(5)
    assert await claim_ids(store) == [job_id]


async def test_release_to_suspended_wakes_at_run_at(store: Store, clock) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    assert await release(store, claimed.lease, "suspended", run_at=clock.now + 30)
    assert await state(store, job_id) is JobState.SUSPENDED
    assert await store.next_due_at() == clock.now + 30
    clock.advance(30)
    again = await claim_one(store, job_id)
    assert again.attempt == 1


async def test_release_to_paused_and_resume(store: Store) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    assert await release(store, claimed.lease, "paused", reason="pause requested")
    assert await state(store, job_id) is JobState.PAUSED
    assert await claim_ids(store) == []
    assert await store.resume(job_id) == 1
    assert await claim_ids(store) == [job_id]


async def test_release_to_cancelled(store: Store, clock) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    assert await release(store, claimed.lease, "cancelled", reason="stop")
    record = await store.get(job_id)
    assert record is not None
    assert record.state is JobState.CANCELLED and record.finished_at == clock.now


async def test_release_to_pending_after_cancel_request_cancels(store: Store) -> None:
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    await store.cancel(job_id)
    assert await release(store, claimed.lease, "pending")
    assert await state(store, job_id) is JobState.CANCELLED


async def test_fail_with_retry_after_cancel_request_cancels(store: Store, clock) -> None:
    job_id = await submit(store, max_attempts=5)
    claimed = await claim_one(store, job_id)
    await store.cancel(job_id)
    assert await fail(store, claimed.lease, retry_at=clock.now)
    assert await state(store, job_id) is JobState.CANCELLED


async def test_finish_batch_mixes_outcomes_and_stale_leases(store: Store, clock) -> None:
    ids = [await submit(store, max_attempts=2) for _ in range(4)]
    jobs = {j.id: j for j in await claim(store)}
    outcomes = [
        Complete(jobs[ids[0]].lease, '"a"'),
        Fail(jobs[ids[1]].lease, "x", retry_at=clock.now + 1),
        Release(jobs[ids[2]].lease, "pending", "stop"),
        Complete(Lease(ids[3], jobs[ids[3]].claim_seq + 7), '"forged"'),
        Complete(Lease(987_654, 1), None),
    ]
    assert await store.finish(outcomes) == [True, True, True, False, False]
    assert [await state(store, i) for i in ids] == [
        JobState.COMPLETED,
        JobState.SCHEDULED,
        JobState.PENDING,
        JobState.RUNNING,
    ]
    assert await store.finish([]) == []


async def test_suspended_waiting_for_its_child_wakes_when_the_child_ends(store: Store) -> None:
    parent = await submit(store)
    claimed = await claim_one(store, parent)
    child = await submit(store, parent_id=parent)
    assert await release(
        store, claimed.lease, "suspended", wait_for=f"job:{child}", run_at=FAR_FUTURE
    )
    assert await state(store, parent) is JobState.SUSPENDED
    await run(store, child)
    assert await state(store, parent) is JobState.PENDING
    assert (await claim_one(store, parent)).attempt == 1


async def test_suspended_waiting_for_a_job_that_is_not_its_child_runs_again_at_once(
    store: Store,
) -> None:
    # Only children wake their parent; a wait on any other job would never end.
    job_id = await submit(store)
    claimed = await claim_one(store, job_id)
    other = await submit(store)
    assert await release(
        store, claimed.lease, "suspended", wait_for=f"job:{other}", run_at=FAR_FUTURE
    )
    assert await state(store, job_id) is JobState.PENDING
    assert await state(store, other) is JobState.PENDING


async def test_suspended_waiting_for_an_event_wakes_on_emit_or_at_once_if_emitted(
    store: Store,
) -> None:
    first = await submit(store)
    claimed = await claim_one(store, first)
    assert await release(
        store, claimed.lease, "suspended", wait_for="event:paid", run_at=FAR_FUTURE
    )
    assert await state(store, first) is JobState.SUSPENDED
    assert await store.emit_event("paid", None)
    assert await state(store, first) is JobState.PENDING
    await run(store, first)
    second = await submit(store)
    claimed = await claim_one(store, second)
    assert await release(
        store, claimed.lease, "suspended", wait_for="event:paid", run_at=FAR_FUTURE
    )
    assert await state(store, second) is JobState.PENDING


async def test_one_batch_of_completions_judges_each_job_on_its_own(store: Store, clock) -> None:
    """Plain completions, a parent with a live child, a finalize, a duplicate and a stale lease
    in one call (PostgreSQL ends the plain ones with one fenced statement, the rest apart)."""
    plain = [await submit(store) for _ in range(3)]
    parent, finalizing, stale = [await submit(store) for _ in range(3)]
    jobs = {j.id: j for j in await claim(store)}
    [child_result] = await store.submit([NewJob("c::t", "c", "{}", parent_id=parent)])
    clock.advance(2)
    outcomes = [
        Complete(jobs[plain[0]].lease, '"zero"'),
        Complete(jobs[parent].lease, '"parent"'),
        Complete(jobs[plain[1]].lease, None),
        Complete(jobs[plain[0]].lease, '"again"'),  # the same job twice: the second is refused
        Complete(jobs[finalizing].lease, '"first half"', needs_finalize=True),
        Complete(Lease(stale, jobs[stale].claim_seq + 1), '"forged"'),
        Complete(jobs[plain[2]].lease, '{"n": 2}'),
    ]
    assert await store.finish(outcomes) == [True, True, True, False, True, False, True]
    for job_id, result in zip(plain, ['"zero"', None, '{"n": 2}'], strict=True):
        record = await store.get(job_id)
        assert record is not None
        assert (record.state, record.result, record.finished_at) == (
            JobState.COMPLETED,
            result,
            clock.now,
        )
        assert record.worker_id is None and record.progress == 1.0
        [attempt] = await store.attempts(job_id)
        assert (attempt.outcome, attempt.finished_at) == ("completed", clock.now)
    record = await store.get(parent)
    assert record is not None and record.state is JobState.WAITING
    assert record.result == '"parent"' and record.active_children == 1
    assert child_result.id != parent
    record = await store.get(finalizing)
    assert record is not None and (record.state, record.phase) == (JobState.PENDING, "finalize")
    assert await state(store, stale) is JobState.RUNNING
