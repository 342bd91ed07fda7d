"""Handler classes, shared state, aging, snapshots, pruning, and a Scheduler inside a Service."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import attrs
import pytest

from wireframe import (
    Domain,
    Handler,
    JobContext,
    JobState,
    OneshotTask,
    Priority,
    Scheduler,
    Service,
    StopReceiver,
)
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@attrs.frozen
class Item:
    n: int


class Greeter:
    def __init__(self, greeting: str) -> None:
        self.greeting = greeting


async def test_handler_class_with_finalize() -> None:
    work = Domain("work")

    class Fanout(Handler):
        async def execute(self, job: Item, ctx: JobContext) -> int:
            for i in range(job.n):
                await ctx.spawn(Item(i), type="work::Leaf")
            return job.n

        async def finalize(self, job: Item, ctx: JobContext) -> int:
            return sum(int(str(k.result)) for k in await ctx.children())

    class Leaf(Handler):
        async def execute(self, job: Item, ctx: JobContext) -> int:
            return job.n * 10

    fanout = work.register(Fanout)
    work.register(Leaf)
    assert fanout.type == "work::Fanout" and fanout.finalize_fn is not None
    async with running(Scheduler("memory://", domains=[work])) as s:
        out = await s.submit(Item(4), type="work::Fanout")
        assert await s.result(out.id, timeout=10) == 0 + 10 + 20 + 30


async def test_state_is_looked_up_in_the_domain_first_then_the_scheduler() -> None:
    work = Domain("work", state=[Greeter("domain hello")])
    other = Domain("other")

    @work.job
    async def greet(job: Item, ctx: JobContext) -> str:
        return ctx.state(Greeter).greeting

    @other.job
    async def greet_other(job: Item, ctx: JobContext) -> str:
        return ctx.state(Greeter).greeting

    @other.job
    async def missing(job: Item, ctx: JobContext) -> str:
        return str(ctx.state(int))

    s = Scheduler("memory://", domains=[work, other], state=[Greeter("global hello")])
    async with running(s):
        a = await s.submit(Item(1), type="work::greet")
        b = await s.submit(Item(1), type="other::greet_other")
        c = await s.submit(Item(1), type="other::missing")
        assert await s.result(a.id, timeout=10) == "domain hello"
        assert await s.result(b.id, timeout=10) == "global hello"
        with pytest.raises(Exception, match="no state of type int"):
            await s.result(c.id, timeout=10)


async def test_aging_lets_a_low_priority_job_through_a_stream_of_high_ones() -> None:
    work = Domain("work")
    order: list[str] = []

    @work.job
    async def step(job: Item, ctx: JobContext) -> None:
        order.append("low" if job.n < 0 else "high")
        await anyio.sleep(0.005)

    s = Scheduler(
        "memory://", domains=[work], max_concurrency=1, aging_interval=0.05, poll_interval=0.01
    )
    async with running(s):
        low = await s.submit(Item(-1), priority=Priority.LOW)
        outs = []
        for i in range(80):  # keep the queue full of HIGH jobs for longer than several intervals
            outs.append(await s.submit(Item(i), priority=Priority.HIGH))
            await anyio.sleep(0.004)
        await s.result(low.id, timeout=10)
        for out in outs:
            await s.result(out.id, timeout=10)
    assert order.index("low") < len(order) - 1, "the low-priority job starved until the end"


async def test_snapshot_counts_states_and_shows_running_progress() -> None:
    work = Domain("work")
    release = anyio.Event()
    at_half = anyio.Event()

    @work.job
    async def step(job: Item, ctx: JobContext) -> None:
        if job.n == 0:
            ctx.progress(0.5, "halfway")
            at_half.set()
            await release.wait()

    async with running(Scheduler("memory://", domains=[work], max_concurrency=1)) as s:
        first = await s.submit(Item(0))
        await at_half.wait()
        await s.submit(Item(1))
        await s.submit(Item(2), delay=60)
        snap = await s.snapshot()
        assert snap.count("running") == 1 and snap.count("pending") == 1
        assert snap.count(JobState.SCHEDULED, domain="work") == 1
        [run] = snap.running
        assert (run.id, run.progress, run.message) == (first.id, 0.5, "halfway")
        release.set()
        await s.result(first.id, timeout=10)


async def test_keep_history_prunes_old_finished_jobs() -> None:
    work = Domain("work")

    @work.job
    async def step(job: Item, ctx: JobContext) -> None:
        return None

    s = Scheduler("memory://", domains=[work], keep_history=0.05, poll_interval=0.02)
    async with running(s):
        out = await s.submit(Item(1))
        await s.result(out.id, timeout=10)
        deadline = time.monotonic() + 10
        while await s.get(out.id) is not None:
            assert time.monotonic() < deadline, "finished job was never pruned"
            await anyio.sleep(0.02)
        live = await s.submit(Item(2), delay=60)
        await anyio.sleep(0.2)
        assert await s.get(live.id) is not None, "a pending job must never be pruned"


async def test_scheduler_is_one_task_of_a_service() -> None:
    work = Domain("work")
    results: list[object] = []

    @work.job
    async def double(job: Item, ctx: JobContext) -> int:
        if job.n == 3:
            raise RuntimeError("handler failure must not stop the service")
        return job.n * 2

    scheduler = Scheduler("memory://", domains=[work])
    service = Service(name="app", handle_signals=False)
    service.add_task(scheduler)

    class Driver(OneshotTask):
        id = "driver"

        async def run(self, stop: StopReceiver) -> None:
            outs = await scheduler.submit_many([Item(i) for i in range(5)])
            for out in outs:
                try:
                    results.append(await scheduler.result(out.id, timeout=10))
                except Exception as exc:
                    results.append(type(exc).__name__)
            service.stop("driver done")

    service.add_task(Driver())
    await service.run()
    assert results == [0, 2, 4, "JobFailed", 8]


async def test_a_standalone_worker_runs_jobs_and_closes_its_store(tmp_path: Path) -> None:
    from wireframe import Worker

    work = Domain("work")

    @work.job
    async def double(job: Item, ctx: JobContext) -> int:
        return job.n * 2

    url = f"sqlite:///{tmp_path / 'w.db'}"
    worker = Worker(url, [work], poll_interval=0.02)
    async with Scheduler(url, domains=[work], worker=False) as client, running(worker):
        out = await client.submit(Item(21))
        assert await client.result(out.id, timeout=10) == 42
    assert worker._hub.opened is False
