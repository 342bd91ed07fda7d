"""A checkpoint's identity is what the call did: a re-run that spawns another child (another
payload or type) where one was recorded, or passes a step other arguments, fails loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
from durable_support import KINDS, scheduler_on

from wireframe import Domain, JobContext, JobFailed, Retry, Scheduler
from wireframe.durable import NonDeterminismError
from wireframe.store import ClaimRequest, MemoryStore, Release, SqliteStore, Store
from wireframe.testing import running

pytestmark = pytest.mark.anyio


def flow_domain(first: tuple[str, int], second: tuple[str, int]) -> Domain:
    """A parent that spawns `first` (type, n) on its first attempt, `second` on later ones."""
    flow = Domain("flow")

    @flow.job(retry=Retry.fixed(attempts=3, delay=0))
    async def parent(job: dict, ctx: JobContext) -> int:  # type: ignore[type-arg]
        kind, n = first if ctx.job.attempt == 1 else second
        handle = await ctx.spawn({"n": n}, type=f"flow::{kind}")
        if ctx.job.attempt == 1:
            raise RuntimeError("crash after the spawn")
        return handle.id

    @flow.job
    async def child(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        pass

    @flow.job
    async def other(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        pass

    return flow


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rerun_that_spawns_another_payload_fails_naming_both(
    kind: str, tmp_path: Path
) -> None:
    async with scheduler_on(kind, tmp_path, flow_domain(("child", 1), ("child", 2))) as s:
        out = await s.submit({}, type="flow::parent")
        with pytest.raises(JobFailed) as failed:
            await s.result(out.id, timeout=10)
        error = failed.value.error or ""
        assert NonDeterminismError.__name__ in error
        assert "durable call #1" in error
        assert 'a spawn of flow::child with payload {"n":1}' in error, error
        assert 'this run asked for a spawn of flow::child with payload {"n":2}' in error, error
        children = await s.store.list_jobs(parent_id=out.id)
        assert [c.payload for c in children] == ['{"n":1}'], "no second child, no old child"


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rerun_that_spawns_another_type_fails_naming_both(
    kind: str, tmp_path: Path
) -> None:
    async with scheduler_on(kind, tmp_path, flow_domain(("child", 1), ("other", 1))) as s:
        out = await s.submit({}, type="flow::parent")
        with pytest.raises(JobFailed, match=r"spawn of flow::child .* spawn of flow::other"):
            await s.result(out.id, timeout=10)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_rerun_with_the_same_spawns_gets_the_same_children(
    kind: str, tmp_path: Path
) -> None:
    async with scheduler_on(kind, tmp_path, flow_domain(("child", 1), ("child", 1))) as s:
        out = await s.submit({}, type="flow::parent")
        child_id = await s.result(out.id, timeout=10)
        children = await s.store.list_jobs(parent_id=out.id)
        assert [c.id for c in children] == [child_id]


async def test_a_spawn_recorded_by_an_earlier_version_replays(tmp_path: Path) -> None:
    """Earlier versions named a spawn by its type only: a job suspended across the upgrade
    gets its child back instead of failing (or spawning it again)."""
    flow = Domain("flow")

    @flow.job
    async def parent(job: dict, ctx: JobContext) -> int:  # type: ignore[type-arg]
        return (await ctx.spawn({"n": 1}, type="flow::child")).id

    @flow.job
    async def child(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        pass

    for store in (MemoryStore(), SqliteStore(tmp_path / "jobs.db")):
        scheduler = Scheduler(store, domains=[flow], poll_interval=0.02)
        await store.open()
        parent_id, child_id = await recorded_the_old_way(scheduler, store)
        async with running(scheduler) as s:
            assert await s.result(parent_id, timeout=10) == child_id
            assert [c.id for c in await s.store.list_jobs(parent_id=parent_id)] == [child_id]


async def recorded_the_old_way(scheduler: Scheduler, store: Store) -> tuple[int, int]:
    """A parent whose spawn checkpoint is named as earlier versions named it, handed back."""
    [submitted] = await store.submit([scheduler.build_job({}, "flow::parent", {})])
    [claimed] = await store.claim(ClaimRequest("old-version", 1, 60.0, ("flow",)))
    child = scheduler.build_job({"n": 1}, "flow::child", {"parent": submitted.id})
    child_id = await store.spawn_child(claimed.lease, 0, "$spawn:flow::child", child, 60.0)
    assert isinstance(child_id, int)
    assert await store.finish([Release(claimed.lease, "pending", "upgrade")]) == [True]
    return submitted.id, child_id


@pytest.mark.parametrize("kind", KINDS)
async def test_a_step_rerun_with_other_arguments_names_them(kind: str, tmp_path: Path) -> None:
    flow = Domain("flow")

    @flow.job(retry=Retry.fixed(attempts=3, delay=0))
    async def fetch(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        await ctx.step("fetch", lambda url: url, f"https://example.org/{ctx.job.attempt}")
        raise RuntimeError("crash after the step")

    async with scheduler_on(kind, tmp_path, flow) as s:
        out = await s.submit({}, type="flow::fetch")
        with pytest.raises(JobFailed) as failed:
            await s.result(out.id, timeout=10)
        error = failed.value.error or ""
        assert "NonDeterminismError" in error
        assert "the same step with other arguments" in error
        assert "https://example.org/2" in error, error


async def test_a_rerun_that_spawns_another_sibling_fails_too(tmp_path: Path) -> None:
    flow = Domain("flow")

    @flow.job
    async def parent(job: dict, ctx: JobContext) -> object:  # type: ignore[type-arg]
        return await ctx.join(await ctx.spawn({}, type="flow::elder"))

    @flow.job(retry=Retry.fixed(attempts=3, delay=0))
    async def elder(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        await ctx.spawn_sibling({"n": ctx.job.attempt}, type="flow::younger")
        raise RuntimeError("crash after the spawn")

    @flow.job
    async def younger(job: dict, ctx: JobContext) -> None:  # type: ignore[type-arg]
        pass

    async with scheduler_on("memory", tmp_path, flow) as s:
        out = await s.submit({}, type="flow::parent", fail_fast=False)
        with pytest.raises(JobFailed, match=r'payload \{"n":1\}.*payload \{"n":2\}'):
            await s.result(out.id, timeout=10)
        younger = await s.jobs(type="flow::younger")
    assert [j.payload for j in younger] == ['{"n":1}']
