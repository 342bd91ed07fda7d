"""Progress reaches the store soon, coalesced: one beat, after `progress_every` seconds, of the
jobs whose progress changed in that time (renewing their leases, no one else's); no change, no
beat."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from wireframe.scheduler import ConfigError, Domain, JobContext, Worker
from wireframe.store import Beat, LeaseStatus, MemoryStore, NewJob
from wireframe.testing import running

pytestmark = pytest.mark.anyio

EVERY = 0.05
"""The test's `progress_every` (the default is 1 s)."""


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class BeatLog(MemoryStore):
    """A memory store that notes the progress each heartbeat carries, by job id."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.beats: list[dict[int, float | None]] = []

    async def heartbeat(self, beats: Sequence[Beat], lease_ttl: float) -> dict[int, LeaseStatus]:
        self.beats.append({b.lease.job_id: b.progress for b in beats})
        return await super().heartbeat(beats, lease_ttl)


async def until_progress(store: MemoryStore, job_id: int, value: float) -> None:
    while (job := await store.get(job_id)) is None or job.progress != value:
        await anyio.sleep(0.005)


async def test_changes_of_one_interval_go_in_one_beat_of_the_jobs_that_changed() -> None:
    work = Domain("work")
    started = {name: anyio.Event() for name in "abc"}
    go = {name: anyio.Event() for name in "abc"}
    release = anyio.Event()

    @work.job
    async def step(job: dict[str, Any], ctx: JobContext) -> None:
        name, reports = job["name"], job["reports"]
        started[name].set()
        await go[name].wait()
        for i in range(1, reports + 1):
            ctx.progress(i / reports, f"{i} of {reports}")
        await release.wait()

    clock = Clock()
    store = BeatLog(clock)
    worker = Worker(store, [work], claim_ttl=300.0, progress_every=EVERY, poll_interval=0.01)
    await worker.open()
    with anyio.fail_after(10):
        async with running(worker):
            payloads = [{"name": "a", "reports": 10}, {"name": "b", "reports": 1}]
            payloads.append({"name": "c", "reports": 1})
            a, b, c = [r.id for r in await store.submit([_job(p) for p in payloads])]
            worker.notify()
            for event in started.values():
                await event.wait()
            claimed = {j: (await store.get(j)).lease_expires_at for j in (a, b, c)}  # type: ignore[union-attr]
            clock.now += 10.0
            go["a"].set()
            go["b"].set()
            await until_progress(store, a, 1.0)
            await until_progress(store, b, 1.0)
            assert store.beats == [{a: 1.0, b: 1.0}]  # a's ten changes: one beat, the last value
            leases = {j: (await store.get(j)).lease_expires_at for j in (a, b, c)}  # type: ignore[union-attr]
            assert leases == {a: clock.now + 300.0, b: clock.now + 300.0, c: claimed[c]}

            await anyio.sleep(4 * EVERY)  # time passes with no change: no beat
            assert store.beats == [{a: 1.0, b: 1.0}]
            go["c"].set()
            await until_progress(store, c, 1.0)
            assert store.beats == [{a: 1.0, b: 1.0}, {c: 1.0}]
            job = await store.get(c)
            assert job is not None and job.progress_message == "1 of 1"
            release.set()


async def test_a_bad_fraction_is_refused_naming_the_job_and_the_value() -> None:
    work = Domain("work")
    refused: list[str] = []
    release = anyio.Event()

    @work.job
    async def step(job: dict[str, Any], ctx: JobContext) -> None:
        for bad in (1.5, -0.1, float("nan"), float("inf"), "0.5", True, None):
            try:
                ctx.progress(bad)  # type: ignore[arg-type]
            except ConfigError as exc:
                refused.append(str(exc))
        ctx.progress(1, "an int is a number")
        await release.wait()

    store = BeatLog(Clock())
    worker = Worker(store, [work], claim_ttl=300.0, progress_every=EVERY, poll_interval=0.01)
    await worker.open()
    with anyio.fail_after(10):
        async with running(worker):
            (submitted,) = await store.submit([NewJob("work::step", "work", "{}")])
            worker.notify()
            await until_progress(store, submitted.id, 1.0)
            job = await store.get(submitted.id)
            assert job is not None and job.progress_message == "an int is a number"
            release.set()
    bads = ("1.5", "-0.1", "nan", "inf", "'0.5'", "True", "None")
    assert len(refused) == len(bads)
    for text, bad in zip(refused, bads, strict=True):
        assert f"job {submitted.id}: progress fraction" in text and bad in text


async def test_a_progress_interval_that_is_not_a_positive_number_is_refused() -> None:
    for bad in (0, -1.0, float("nan"), "1"):
        with pytest.raises(ConfigError, match=f"Worker progress_every .*{bad!r}"):
            Worker("memory://", [Domain("d")], progress_every=bad)  # type: ignore[arg-type]


def _job(payload: dict[str, Any]) -> NewJob:
    import json

    return NewJob("work::step", "work", json.dumps(payload))
