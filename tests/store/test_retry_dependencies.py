"""Store conformance: retrying a job that ended while it still waited on its dependencies.

Such a job (dependency_failed, cancelled by its dependency's failure or by an operator, expired
while blocked) re-evaluates its dependencies: completed ones are met, active ones make it wait
again (blocked), and one that ended without completing refuses the retry.
"""

from __future__ import annotations

import pytest

from wireframe.store import InvalidTransitionError, JobRecord, JobState, Store, Transition

from store_support import claim_ids, claim_one, fail, run, state, states, submit

pytestmark = pytest.mark.anyio


async def fail_job(store: Store, job_id: int) -> None:
    """Claim `job_id` (type a::t, its only attempt) and fail it."""
    assert await fail(store, (await claim_one(store, job_id, domains=("a",), limit=1)).lease)


async def record(store: Store, job_id: int) -> JobRecord:
    """The job's row; it must exist."""
    found = await store.get(job_id)
    assert found is not None, job_id
    return found


async def test_retry_is_refused_while_the_failed_dependency_has_not_been_retried(
    store: Store,
) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    await fail_job(store, dep)
    before = await record(store, job_id)
    assert before.state is JobState.DEPENDENCY_FAILED
    with pytest.raises(InvalidTransitionError) as refused:
        await store.retry(job_id)
    message = str(refused.value)
    assert f"job {job_id}" in message and f"job {dep}" in message and "failed" in message
    assert await record(store, job_id) == before
    assert await claim_ids(store) == []


async def test_retried_job_waits_for_its_retried_dependency(store: Store) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    await fail_job(store, dep)
    await store.retry(dep)
    await store.retry(job_id)
    retried = await record(store, job_id)
    assert retried.state is JobState.BLOCKED and retried.depends_on == (dep,)
    assert retried.finished_at is None
    assert await claim_ids(store) == []
    await run(store, dep, domains=("a",))
    assert await state(store, job_id) is JobState.PENDING
    assert await claim_ids(store) == [job_id]


async def test_dependency_failing_again_fails_the_retried_job_again(store: Store) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    await fail_job(store, dep)
    await store.retry(dep)
    running = await claim_one(store, dep, domains=("a",))
    await store.retry(job_id)
    assert await state(store, job_id) is JobState.BLOCKED
    assert await fail(store, running.lease)
    again = await record(store, job_id)
    assert again.state is JobState.DEPENDENCY_FAILED and str(dep) in (again.error or "")
    assert await claim_ids(store) == []


async def test_completed_dependencies_count_as_met(store: Store) -> None:
    done = await submit(store, type="a::t")
    flaky = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(done, flaky), on_dependency_failure="fail")
    await run(store, done, domains=("a",), limit=1)
    await fail_job(store, flaky)
    assert await state(store, job_id) is JobState.DEPENDENCY_FAILED
    await store.retry(flaky)
    await store.retry(job_id)
    assert (await record(store, job_id)).depends_on == (flaky,)
    await run(store, flaky, domains=("a",))
    assert await claim_ids(store) == [job_id]
    # Once every dependency has completed, a retry makes the job runnable at once.
    other = await submit(store, depends_on=(done, flaky), on_dependency_failure="fail")
    await store.cancel(other)
    await store.retry(other)
    assert await state(store, other) is JobState.PENDING


async def test_cancelled_chain_is_retried_link_by_link(store: Store) -> None:
    root = await submit(store, type="a::t")
    mid = await submit(store, type="b::t", depends_on=(root,))
    leaf = await submit(store, depends_on=(mid,))
    await fail_job(store, root)
    assert await states(store, mid, leaf) == [JobState.CANCELLED, JobState.CANCELLED]
    with pytest.raises(InvalidTransitionError, match=rf"job {mid}\b.*cancelled"):
        await store.retry(leaf)
    with pytest.raises(InvalidTransitionError, match=rf"job {root}\b.*failed"):
        await store.retry(mid)
    await store.retry(root)
    await store.retry(mid)
    await store.retry(leaf)
    assert await states(store, root, mid, leaf) == [
        JobState.PENDING,
        JobState.BLOCKED,
        JobState.BLOCKED,
    ]
    await run(store, root, domains=("a",))
    assert await states(store, mid, leaf) == [JobState.PENDING, JobState.BLOCKED]
    await run(store, mid, domains=("b",))
    assert await claim_ids(store) == [leaf]


async def test_refusal_names_every_dependency_that_did_not_complete(store: Store) -> None:
    first = await submit(store, type="a::t")
    second = await submit(store, type="a::t")
    pending = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(first, second, pending), on_dependency_failure="fail")
    await fail_job(store, first)
    await store.cancel(second)
    with pytest.raises(InvalidTransitionError) as refused:
        await store.retry(job_id)
    message = str(refused.value)
    assert f"job {first} (failed)" in message and f"job {second} (cancelled)" in message
    assert f"job {pending}" not in message


async def test_job_born_dependency_failed_waits_for_the_retried_dependency(
    store: Store,
) -> None:
    dep = await submit(store, type="a::t")
    await fail_job(store, dep)
    job_id = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    assert await state(store, job_id) is JobState.DEPENDENCY_FAILED
    with pytest.raises(InvalidTransitionError, match=rf"job {dep}\b.*failed"):
        await store.retry(job_id)
    await store.retry(dep)
    await store.retry(job_id)
    assert (await record(store, job_id)).depends_on == (dep,)
    await run(store, dep, domains=("a",))  # the dependency now knows it has a dependent
    assert await claim_ids(store) == [job_id]


async def test_job_cancelled_while_blocked_waits_again_after_a_retry(store: Store) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,))
    assert await store.cancel(job_id) is JobState.CANCELLED
    await store.retry(job_id)
    assert await state(store, job_id) is JobState.BLOCKED
    assert await claim_ids(store) == []
    await run(store, dep, domains=("a",))
    assert await claim_ids(store) == [job_id]


async def test_job_expired_after_unblocking_runs_after_a_retry(store: Store, clock) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,), expires_at=clock.now + 10)
    clock.advance(20)
    assert await claim_ids(store, domains=("d",)) == []
    assert await state(store, job_id) is JobState.BLOCKED  # its ttl has not started
    await run(store, dep, domains=("a",))
    clock.advance(10)
    assert await claim_ids(store, domains=("d",)) == []
    assert await state(store, job_id) is JobState.EXPIRED
    await store.retry(job_id)
    retried = await record(store, job_id)
    assert retried.state is JobState.PENDING and retried.expires_at is None
    assert await claim_ids(store) == [job_id]


async def test_retry_back_to_blocked_is_reported_as_a_transition(store: Store) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,), on_dependency_failure="fail")
    await fail_job(store, dep)
    await store.retry(dep)
    seen: list[Transition] = []
    store.observe(seen.extend)
    try:
        await store.retry(job_id)
    finally:
        store.unobserve(seen.extend)
    assert seen == [Transition(job_id, "d::t", JobState.BLOCKED, (dep,))]


async def test_job_that_ran_after_its_dependencies_retries_to_pending(store: Store, clock) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,))
    await run(store, dep, domains=("a",))
    clock.advance(10)
    assert await fail(store, (await claim_one(store, job_id)).lease)
    assert await store.prune(clock.now - 5) == 1  # the dependency is gone; it had completed
    await store.retry(job_id)
    assert await claim_ids(store) == [job_id]


async def test_pruned_dependency_of_a_job_that_never_ran_refuses_the_retry(
    store: Store, clock
) -> None:
    done = await submit(store, type="a::t")
    flaky = await submit(store, type="b::t")
    job_id = await submit(store, depends_on=(done, flaky), on_dependency_failure="fail")
    await run(store, done, domains=("a",))
    clock.advance(10)
    assert await fail(store, (await claim_one(store, flaky, domains=("b",))).lease)
    assert await store.prune(clock.now - 5) == 1
    await store.retry(flaky)
    with pytest.raises(InvalidTransitionError, match=rf"job {done}, since pruned"):
        await store.retry(job_id)
    assert await state(store, job_id) is JobState.DEPENDENCY_FAILED


async def test_ignore_policy_retries_past_ended_dependencies(store: Store) -> None:
    dep = await submit(store, type="a::t")
    waiting = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep, waiting), on_dependency_failure="ignore")
    await store.cancel(job_id)
    await fail_job(store, dep)
    await store.retry(job_id)
    assert (await record(store, job_id)).depends_on == (waiting,)
    await fail_job(store, waiting)
    assert await claim_ids(store) == [job_id]


async def test_job_unblocked_while_paused_retries_to_pending(store: Store, clock) -> None:
    dep = await submit(store, type="a::t")
    job_id = await submit(store, depends_on=(dep,))
    assert await store.pause(job_id) == 1
    await run(store, dep, domains=("a",))
    clock.advance(10)
    assert await store.cancel(job_id) is JobState.CANCELLED
    assert await store.prune(clock.now - 5) == 1  # the dependency is gone; it had completed
    await store.retry(job_id)
    assert await claim_ids(store) == [job_id]
