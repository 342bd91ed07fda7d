"""Durable jobs in one process: steps, sleep, events, spawn/join, durable values, defer_until."""

from __future__ import annotations

import time
from collections import Counter

import anyio
import attrs
import pytest

from wireframe import (
    ChildFailed,
    Domain,
    EventTimeout,
    JobContext,
    JobFailed,
    JobState,
    Retry,
    Scheduler,
)
from wireframe.durable import CheckpointNameError, NonDeterminismError
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Order:
    id: str


def scheduler(*domains: Domain, **kwargs: object) -> Scheduler:
    return Scheduler("memory://", domains=list(domains), poll_interval=0.02, **kwargs)  # type: ignore[arg-type]


async def test_steps_run_once_and_replay_after_a_failed_attempt() -> None:
    flow = Domain("flow")
    calls: Counter[str] = Counter()

    def effect(name: str, value: int) -> int:
        calls[name] += 1
        return value

    @flow.job(retry=Retry.fixed(attempts=3, delay=0))
    async def workflow(job: Order, ctx: JobContext) -> list[int]:
        a = await ctx.step("a", effect, "a", 1)
        b = await ctx.step("b", effect, "b", 2)
        if ctx.job.attempt == 1:
            raise RuntimeError("crash after b")
        c = await ctx.step("c", effect, "c", 3)
        return [a, b, c]

    async with running(scheduler(flow)) as s:
        out = await s.submit(Order("o1"))
        assert await s.result(out.id, timeout=10) == [1, 2, 3]
        marks = await s.store.checkpoints(out.id)
    assert calls == Counter({"a": 1, "b": 1, "c": 1})
    assert [c.kind for c in marks] == ["step", "step", "step"]
    assert marks[0].name.startswith("a:") and marks[0].value == "1"


async def test_step_identity_hashes_arguments_and_numbers_repeats() -> None:
    flow = Domain("flow")

    @flow.job
    async def repeat(job: Order, ctx: JobContext) -> None:
        await ctx.step("fetch", lambda url: url, "https://a")
        await ctx.step("fetch", lambda url: url, "https://b")
        await ctx.step("fetch", lambda url: url, "https://a")
        with pytest.raises(CheckpointNameError, match="reserved"):
            await ctx.step("$internal", lambda: 1)

    async with running(scheduler(flow)) as s:
        out = await s.submit(Order("x"))
        await s.result(out.id, timeout=10)
        names = [c.name for c in await s.store.checkpoints(out.id)]
    assert names[0] != names[1] and names[2] == names[0] + "#2"


async def test_a_rerun_that_diverges_fails_loudly_naming_both_calls() -> None:
    flow = Domain("flow")

    @flow.job(retry=Retry.fixed(attempts=2, delay=0))
    async def fickle(job: Order, ctx: JobContext) -> None:
        if ctx.job.attempt == 1:
            await ctx.step("charge", lambda: "ok")
            raise RuntimeError("first attempt fails")
        await ctx.step("refund", lambda: "ok")

    async with running(scheduler(flow)) as s:
        out = await s.submit(Order("x"))
        with pytest.raises(JobFailed, match=r"recorded as step 'charge:.*refund:"):
            await s.result(out.id, timeout=10)
        job = await s.get(out.id)
        assert job is not None and "NonDeterminismError" in (job.error or "")
    assert NonDeterminismError


async def test_durable_sleep_frees_the_slot_and_resumes_from_the_top() -> None:
    flow = Domain("flow")
    calls: Counter[str] = Counter()
    events: list[str] = []

    starts: list[float] = []

    @flow.job
    async def sleeper(job: Order, ctx: JobContext) -> None:
        await ctx.step("before", lambda: calls.update(["before"]))
        starts.append(await ctx.now())
        events.append("sleep")
        await ctx.sleep("nap", 0.3)
        events.append("woke")

    @flow.job
    async def other(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        events.append("other ran")

    async with running(scheduler(flow, max_concurrency=1)) as s:
        out = await s.submit(Order("x"), type="flow::sleeper")
        while (await s.get(out.id)).state is not JobState.SUSPENDED:  # type: ignore[union-attr]
            await anyio.sleep(0.01)
        other_job = await s.submit({}, type="flow::other")
        await s.result(other_job.id, timeout=10)  # ran while the sleeper held no slot
        await s.result(out.id, timeout=10)
        job = await s.get(out.id)
    assert calls["before"] == 1
    assert len(starts) == 2 and starts[0] == starts[1], "`now` must replay its first value"
    assert events == ["sleep", "other ran", "sleep", "woke"]
    assert job is not None and job.attempt == 1, "a suspension is not a new attempt"


async def test_sleep_wake_time_is_recorded_once_so_a_retry_does_not_extend_it() -> None:
    flow = Domain("flow")
    woke_at: list[float] = []

    @flow.job(retry=Retry.fixed(attempts=2, delay=0))
    async def nap(job: Order, ctx: JobContext) -> None:
        await ctx.sleep("nap", 0.2)
        woke_at.append(time.time())
        if ctx.job.attempt == 1:
            raise RuntimeError("fail after the sleep")

    async with running(scheduler(flow)) as s:
        t0 = time.time()
        out = await s.submit(Order("x"))
        await s.result(out.id, timeout=10)
    assert len(woke_at) == 2
    assert woke_at[1] - t0 < 0.2 + 5.0 and woke_at[1] - woke_at[0] < 0.2, "retry slept again"


async def test_wait_event_returns_the_first_payload_and_wakes_every_waiter() -> None:
    flow = Domain("flow")

    @flow.job
    async def waiter(job: Order, ctx: JobContext) -> object:
        return await ctx.wait_event(f"shipped:{job.id}")

    async with running(scheduler(flow)) as s:
        a = await s.submit(Order("o1"))
        b = await s.submit(Order("o1"))
        for out in (a, b):
            while (await s.get(out.id)).state is not JobState.SUSPENDED:  # type: ignore[union-attr]
                await anyio.sleep(0.01)
        assert await s.emit_event("shipped:o1", {"carrier": "ups"}) is True
        assert await s.emit_event("shipped:o1", {"carrier": "dhl"}) is False  # a latch
        assert await s.result(a.id, timeout=10) == {"carrier": "ups"}
        assert await s.result(b.id, timeout=10) == {"carrier": "ups"}
        late = await s.submit(Order("o1"))
        assert await s.result(late.id, timeout=10) == {"carrier": "ups"}
        assert (await s.get(late.id)).attempt == 1  # type: ignore[union-attr]


async def test_wait_event_timeout_raises_in_the_handler() -> None:
    flow = Domain("flow")

    @flow.job
    async def impatient(job: Order, ctx: JobContext) -> str:
        try:
            await ctx.wait_event("never", timeout=0.1)
        except EventTimeout:
            return "timed out"
        return "got it"

    async with running(scheduler(flow)) as s:
        out = await s.submit(Order("x"))
        assert await s.result(out.id, timeout=10) == "timed out"


async def test_emit_from_a_handler_wakes_a_waiting_job() -> None:
    flow = Domain("flow")

    @flow.job
    async def waiter(job: Order, ctx: JobContext) -> object:
        return await ctx.wait_event("go")

    @flow.job
    async def emitter(job: dict, ctx: JobContext) -> bool:  # type: ignore[type-arg]
        return await ctx.emit_event("go", 42)

    async with running(scheduler(flow)) as s:
        w = await s.submit(Order("x"), type="flow::waiter")
        while (await s.get(w.id)).state is not JobState.SUSPENDED:  # type: ignore[union-attr]
            await anyio.sleep(0.01)
        e = await s.submit({}, type="flow::emitter")
        assert await s.result(e.id, timeout=10) is True
        assert await s.result(w.id, timeout=10) == 42


async def test_spawn_and_join_children_without_spawning_twice() -> None:
    flow = Domain("flow")
    spawned: Counter[int] = Counter()

    @flow.job
    async def parent(job: Order, ctx: JobContext) -> list[object]:
        handles = [await ctx.spawn({"n": n}, type="flow::child") for n in range(3)]
        return [await ctx.join(h) for h in handles]

    @flow.job
    async def child(job: dict, ctx: JobContext) -> int:  # type: ignore[type-arg]
        spawned[job["n"]] += 1
        await anyio.sleep(0.01)
        return int(job["n"]) * 10

    @flow.job(fail_fast=True) if False else flow.job
    async def bad_parent(job: Order, ctx: JobContext) -> str:
        handle = await ctx.spawn({"n": -1}, type="flow::broken")
        try:
            await ctx.join(handle)
        except ChildFailed as exc:
            return f"caught {exc.job_id}"
        return "no"

    @flow.job
    async def broken(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        raise RuntimeError("child broke")

    async with running(scheduler(flow, max_concurrency=2)) as s:
        out = await s.submit(Order("p"), type="flow::parent")
        assert await s.result(out.id, timeout=10) == [0, 10, 20]
        kids = await s.store.list_jobs(parent_id=out.id)
        assert len(kids) == 3
        bad = await s.submit(Order("p"), type="flow::bad_parent")
        assert str(await s.result(bad.id, timeout=10)).startswith("caught ")
    assert spawned == Counter({0: 1, 1: 1, 2: 1})


async def test_durable_values_are_the_same_on_every_run() -> None:
    flow = Domain("flow")
    seen: list[tuple[float, float, str]] = []

    @flow.job
    async def values(job: Order, ctx: JobContext) -> None:
        seen.append((await ctx.now(), await ctx.rand(), str(await ctx.uuid7())))
        await ctx.sleep("between", 0.05)

    async with running(scheduler(flow)) as s:
        out = await s.submit(Order("x"))
        await s.result(out.id, timeout=10)
    assert len(seen) == 2 and seen[0] == seen[1]
    assert seen[0][2][14] == "7"  # a version-7 UUID


async def test_defer_until_gives_the_slot_back_then_continues_in_the_same_invocation() -> None:
    flow = Domain("flow")
    ready = anyio.Event()
    invocations = 0

    @flow.job
    async def pipeline(job: Order, ctx: JobContext) -> str:
        nonlocal invocations
        invocations += 1
        await ctx.defer_until(lambda: ready.is_set(), poll_interval=0.01)
        return "processed"

    @flow.job
    async def other(job: dict, ctx: JobContext) -> str:  # type: ignore[type-arg]
        return "other"

    async with running(scheduler(flow, max_concurrency=1)) as s:
        out = await s.submit(Order("x"), type="flow::pipeline")
        snap = await s.snapshot()
        while snap.deferred == 0:
            await anyio.sleep(0.01)
            snap = await s.snapshot()
        assert snap.running[0].deferred
        o = await s.submit({}, type="flow::other")
        assert await s.result(o.id, timeout=10) == "other"  # the only slot was free
        ready.set()
        assert await s.result(out.id, timeout=10) == "processed"
    assert invocations == 1


async def test_stopping_while_deferred_releases_the_job_instead_of_failing_it() -> None:
    flow = Domain("flow")
    deferred = anyio.Event()

    @flow.job
    async def waits(job: Order, ctx: JobContext) -> None:
        deferred.set()
        await ctx.defer_until(lambda: False, poll_interval=0.01)

    s = scheduler(flow)
    stop = StopReceiver()
    async with anyio.create_task_group() as tg:
        tg.start_soon(s.run, stop)
        await s.open()
        out = await s.submit(Order("x"))
        await deferred.wait()
        stop._request(StopReason(StopReasonKind.REQUESTED))
        s._hub.opened = False  # keep the memory store open to inspect it
    job = await s.store.get(out.id)
    assert job is not None and job.state is JobState.PENDING


async def test_a_step_that_raised_and_was_caught_runs_again_on_a_rerun() -> None:
    """A step that raised recorded nothing: a re-run runs it again (and the calls after it
    still replay), instead of failing as if the record had diverged."""
    flow = Domain("flow")
    calls: Counter[str] = Counter()

    class Declined(Exception):
        pass

    def charge() -> str:
        calls["charge"] += 1
        raise Declined("card declined")

    @flow.job
    async def checkout(job: Order, ctx: JobContext) -> str:
        try:
            outcome = await ctx.step("charge", charge)
        except Declined:
            outcome = await ctx.step("notify", lambda: calls.update(["notify"]) or "notified")
        await ctx.sleep("settle", 0.01)  # suspends: the job runs again from the top
        return str(outcome)

    async with running(scheduler(flow)) as s:
        out = await s.submit(Order("x"))
        assert await s.result(out.id, timeout=10) == "notified"
    assert calls == Counter({"charge": 2, "notify": 1})
