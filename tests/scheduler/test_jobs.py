"""Scheduler behaviour on the memory store: submit, run, results, retries, limits, control."""

from __future__ import annotations

import time
from typing import Any

import anyio
import attrs
import pytest

from wireframe.scheduler import (
    ConfigError,
    Domain,
    Duplicate,
    JobContext,
    JobFailed,
    JobState,
    PayloadError,
    Permanent,
    Priority,
    Retry,
    Scheduler,
    Submitted,
)
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Add:
    a: int
    b: int


@attrs.frozen
class Note:
    text: str


def make_domain(**kwargs: Any) -> Domain:
    return Domain("math", **kwargs)


async def test_submit_runs_the_handler_and_stores_the_result() -> None:
    math = make_domain()

    @math.job
    async def add(job: Add, ctx: JobContext) -> int:
        return job.a + job.b

    async with running(Scheduler("memory://", domains=[math])) as s:
        out = await s.submit(Add(2, 3))
        assert isinstance(out, Submitted)
        assert await s.result(out.id, timeout=10) == 5
        job = await s.get(out.id)
        assert job is not None and job.state is JobState.COMPLETED and job.type == "math::add"


async def test_dict_payload_needs_the_type_and_round_trips() -> None:
    math = make_domain()

    @math.job
    async def echo(job: dict, ctx: JobContext) -> dict:  # type: ignore[type-arg]
        return {"got": job["x"]}

    async with running(Scheduler("memory://", domains=[math])) as s:
        with pytest.raises(ConfigError, match="pass type="):
            await s.submit({"x": 1})
        out = await s.submit({"x": 1}, type="math::echo")
        assert await s.result(out.id, timeout=10) == {"got": 1}


async def test_priorities_run_highest_first_and_fifo_within_a_level() -> None:
    math = make_domain()
    order: list[str] = []

    @math.job
    async def note(job: Note, ctx: JobContext) -> None:
        order.append(job.text)

    s = Scheduler("memory://", domains=[math], max_concurrency=1)
    await s.open()
    await s.submit(Note("low"), priority=Priority.LOW)
    await s.submit(Note("normal-1"))
    await s.submit(Note("critical"), priority=Priority.CRITICAL)
    await s.submit(Note("normal-2"))
    last = await s.submit(Note("high"), priority="high")
    async with running(s):
        await s.result(last.id, timeout=10)
        jobs = await s.jobs(state="pending")
        while jobs:
            await s.result(jobs[-1].id, timeout=10)
            jobs = await s.jobs(state="pending")
    assert order == ["critical", "high", "normal-1", "normal-2", "low"]


async def test_dedup_key_returns_the_existing_job_until_it_ends() -> None:
    math = make_domain()
    release = anyio.Event()

    @math.job(key=lambda n: n.text)
    async def slow(job: Note, ctx: JobContext) -> None:
        await release.wait()

    async with running(Scheduler("memory://", domains=[math])) as s:
        first = await s.submit(Note("same"))
        again = await s.submit(Note("same"))
        assert again == Duplicate(first.id)
        release.set()
        await s.result(first.id, timeout=10)
        third = await s.submit(Note("same"))
        assert isinstance(third, Submitted) and third.id != first.id


async def test_retries_until_success_and_counts_attempts() -> None:
    math = make_domain()
    calls = 0

    @math.job(retry=Retry.fixed(attempts=3, delay=0))
    async def flaky(job: Note, ctx: JobContext) -> int:
        nonlocal calls
        calls += 1
        if ctx.job.attempt < 3:
            raise RuntimeError(f"boom {ctx.job.attempt}")
        return ctx.job.attempt

    async with running(Scheduler("memory://", domains=[math])) as s:
        out = await s.submit(Note("x"))
        assert await s.result(out.id, timeout=10) == 3
        assert calls == 3
        attempts = await s.store.attempts(out.id)
        assert [a.outcome for a in attempts] == ["failed", "failed", "completed"]


async def test_permanent_is_never_retried_and_keeps_the_traceback() -> None:
    math = make_domain()

    @math.job(retry=Retry.fixed(attempts=5, delay=0))
    async def bad(job: Note, ctx: JobContext) -> None:
        raise Permanent("invalid input")

    async with running(Scheduler("memory://", domains=[math])) as s:
        out = await s.submit(Note("x"))
        with pytest.raises(JobFailed, match="invalid input"):
            await s.result(out.id, timeout=10)
        job = await s.get(out.id)
        assert job is not None and job.attempt == 1 and job.state is JobState.FAILED
        assert job.traceback is not None and "Permanent" in job.traceback


async def test_a_result_that_is_not_json_fails_the_job_naming_it_without_retrying() -> None:
    math = make_domain()

    @math.job(retry=Retry.fixed(attempts=3, delay=0))
    async def odd(job: Note, ctx: JobContext) -> object:
        return {"ok": [1, b"2"]}

    async with running(Scheduler("memory://", domains=[math])) as s:
        out = await s.submit(Note("x"))
        with pytest.raises(JobFailed) as failed:
            await s.result(out.id, timeout=10)
        job = await s.get(out.id)
    message = f"result of job {out.id} (math::odd): result['ok'][1]: object of type bytes"
    assert message in str(failed.value)
    assert job is not None and job.state is JobState.FAILED and job.attempt == 1


async def test_timeout_cancels_the_handler_and_counts_as_a_failed_attempt() -> None:
    math = make_domain()

    @math.job(timeout=0.05, retry=Retry.fixed(attempts=2, delay=0))
    async def hang(job: Note, ctx: JobContext) -> None:
        await anyio.sleep_forever()

    async with running(Scheduler("memory://", domains=[math])) as s:
        out = await s.submit(Note("x"))
        with pytest.raises(JobFailed, match="timed out"):
            await s.result(out.id, timeout=10)
        assert [a.outcome for a in await s.store.attempts(out.id)] == ["timeout", "timeout"]


async def test_a_failing_handler_never_stops_the_scheduler() -> None:
    math = make_domain()

    @math.job
    async def explode(job: Note, ctx: JobContext) -> str:
        if job.text == "bad":
            raise ValueError("nope")
        return job.text

    async with running(Scheduler("memory://", domains=[math])) as s:
        bad = await s.submit(Note("bad"))
        with pytest.raises(JobFailed):
            await s.result(bad.id, timeout=10)
        good = await s.submit(Note("good"))
        assert await s.result(good.id, timeout=10) == "good"


async def test_delay_holds_a_job_back_until_its_time() -> None:
    math = make_domain()
    started: list[float] = []

    @math.job
    async def later(job: Note, ctx: JobContext) -> None:
        started.append(time.time())

    async with running(Scheduler("memory://", domains=[math])) as s:
        t0 = time.time()
        out = await s.submit(Note("x"), delay=0.3)
        assert (await s.get(out.id)).state is JobState.SCHEDULED  # type: ignore[union-attr]
        await s.result(out.id, timeout=10)
    assert started[0] >= t0 + 0.3


async def test_type_concurrency_limit_is_never_exceeded() -> None:
    math = make_domain()
    active = peak = 0

    @math.job(max_concurrency=2)
    async def limited(job: Note, ctx: JobContext) -> None:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.01)
        active -= 1

    async with running(Scheduler("memory://", domains=[math], max_concurrency=8)) as s:
        outs = await s.submit_many([Note(str(i)) for i in range(12)])
        for out in outs:
            await s.result(out.id, timeout=10)
    assert peak == 2


async def test_resource_budget_is_never_exceeded_and_big_jobs_get_through() -> None:
    math = make_domain()
    in_use = peak = 0
    ran: list[str] = []

    @math.job
    async def gpu(job: Note, ctx: JobContext) -> None:
        nonlocal in_use, peak
        need = ctx.job.resources["gpu"]
        in_use += need
        peak = max(peak, in_use)
        ran.append(job.text)
        await anyio.sleep(0.01)
        in_use -= need

    s = Scheduler("memory://", domains=[math], max_concurrency=8, resources={"gpu": 2})
    await s.open()
    outs = [await s.submit(Note(f"small{i}"), resources={"gpu": 1}) for i in range(3)]
    outs.append(await s.submit(Note("big"), resources={"gpu": 2}))
    outs += [await s.submit(Note(f"late{i}"), resources={"gpu": 1}) for i in range(4)]
    async with running(s):
        for out in outs:
            await s.result(out.id, timeout=10)
    assert peak <= 2
    assert ran.index("big") < ran.index("late3")
    with pytest.raises(ConfigError, match="could never run"):
        await s.submit(Note("huge"), resources={"gpu": 3})


async def test_unknown_job_type_fails_with_a_clear_reason() -> None:
    from wireframe.store import NewJob

    math = make_domain()

    @math.job
    async def known(job: Note, ctx: JobContext) -> None:
        return None

    async with running(Scheduler("memory://", domains=[math])) as s:
        await s.open()
        [out] = await s.store.submit([NewJob("math::gone", "math", "{}")])
        with pytest.raises(JobFailed, match="no handler for job type 'math::gone'"):
            await s.result(out.id, timeout=10)


async def test_bad_submissions_are_rejected_and_nothing_is_stored() -> None:
    math = make_domain()

    @math.job
    async def add(job: Add, ctx: JobContext) -> int:
        return job.a + job.b

    s = Scheduler("memory://", domains=[math])
    await s.open()
    bad_calls: list[tuple[object, dict[str, Any], str]] = [
        (Note("x"), {}, "no job type takes a payload of type Note"),
        (Add(1, 2), {"priority": 5000}, "5000"),
        (Add(1, 2), {"priority": "urgent"}, "urgent"),
        (Add(1, 2), {"delay": -1}, "delay"),
        (Add(1, 2), {"delay": float("nan")}, "delay"),
        (Add(1, 2), {"ttl": 0}, "ttl"),
        (Add(1, 2), {"type": "nope::add"}, "unknown domain"),
        (Add(1, 2), {"type": "math::nope"}, "unknown job type"),
        (Add(1, 2), {"on_dependency_failure": "explode"}, "explode"),
        (Add(1, 2), {"depends_on": ["x"]}, "'x' is not a job id"),
        (Add(1, 2), {"tags": "gpu"}, "tags"),
    ]
    for payload, options, message in bad_calls:
        with pytest.raises(ConfigError, match=message):
            await s.submit(payload, **options)
    with pytest.raises(Exception, match="999"):
        await s.submit(Add(1, 2), depends_on=[999])
    with pytest.raises(PayloadError, match=r"payload.a: expected int, got \{1, 2\} \(set\)"):
        await s.submit({"a": {1, 2}, "b": 1}, type="math::add")
    assert await s.jobs() == []
    await s.close()


async def test_definition_errors_name_the_handler() -> None:
    math = make_domain()
    with pytest.raises(ConfigError):

        @math.job
        def not_async(job: Add, ctx: JobContext) -> None:  # type: ignore[type-var]
            return None

    with pytest.raises(ConfigError):

        @math.job
        async def one_arg(job: Add) -> None:  # type: ignore[arg-type]
            return None

    with pytest.raises(ConfigError, match="retry"):

        @math.job(retry="lots")  # type: ignore[call-overload]
        async def bad_retry(job: Add, ctx: JobContext) -> None:
            return None

    @math.job
    async def twice(job: Add, ctx: JobContext) -> None:
        return None

    with pytest.raises(ConfigError, match="already registered"):
        math.job(name="twice")(twice.execute)
