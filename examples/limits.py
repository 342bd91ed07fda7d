"""Limits: global, per-domain and per-job-type concurrency, and a named resource budget.

    python examples/limits.py

The scheduler runs at most 4 jobs at once. The ``media`` domain is capped at 3 of them, and its
``transcode`` type at 1. The ``ml`` domain's jobs need GPUs: the worker has a budget of
``resources={"gpu": 2}``; ``infer`` takes one GPU, and one ``train`` job takes both. Each handler
counts how many of its kind run at the same time; the peaks never exceed the limits. The big
``train`` job is submitted behind a crowd of small ``infer`` jobs, yet it does not starve: the
scheduler reserves the GPUs for it as they free up.
"""

from __future__ import annotations

import logging
from collections import Counter

import anyio
import attrs

from wireframe import Domain, JobContext, Scheduler, Service, StopReceiver, TaskKind

media = Domain("media", max_concurrency=3)
ml = Domain("ml")

now: Counter[str] = Counter()  # jobs running right now, per group
peak: Counter[str] = Counter()  # the most that ever ran at once
ml_order: list[str] = []


@attrs.frozen
class Clip:
    n: int


@attrs.frozen
class Batch:
    n: int


async def occupy(*groups: str, seconds: float = 0.05) -> None:
    """Count this job in `groups` while it 'works' for `seconds`."""
    for group in groups:
        now[group] += 1
        peak[group] = max(peak[group], now[group])
    try:
        await anyio.sleep(seconds)
    finally:
        for group in groups:
            now[group] -= 1


@media.job
async def thumbnail(job: Clip, ctx: JobContext) -> None:
    await occupy("all", "media")


@media.job(max_concurrency=1)  # a per-type limit, inside the domain's
async def transcode(job: Clip, ctx: JobContext) -> None:
    await occupy("all", "media", "transcode")


@ml.job(resources={"gpu": 1})  # the default need of this type (a submission may override it)
async def infer(job: Batch, ctx: JobContext) -> None:
    ml_order.append(f"infer-{job.n}")
    await occupy("all", "gpu")


@ml.job(resources={"gpu": 2})
async def train(job: Batch, ctx: JobContext) -> None:
    ml_order.append("TRAIN")
    await occupy("all", "gpu", "gpu", seconds=0.1)  # counted twice: it holds two GPUs


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/limits.py` runs it too)."""
    scheduler = Scheduler("memory://", domains=[media, ml], max_concurrency=4, resources={"gpu": 2})
    service = Service("limits", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        # Two types share a payload class here, so each submission names its type.
        outs = await scheduler.submit_many([Clip(i) for i in range(12)], type=thumbnail)
        outs += await scheduler.submit_many([Clip(i) for i in range(4)], type=transcode)
        outs += await scheduler.submit_many([Batch(i) for i in range(6)], type=infer)
        outs.append(await scheduler.submit(Batch(99), type=train))  # needs both GPUs
        outs += await scheduler.submit_many([Batch(i) for i in range(6, 16)], type=infer)
        for out in outs:
            await scheduler.result(out.id, timeout=20)

        print("peak running at once (limit):")
        for group, limit in [("all", 4), ("media", 3), ("transcode", 1), ("gpu", 2)]:
            print(f"  {group:<10} {peak[group]} ({limit})")
            assert peak[group] <= limit
        print("ml jobs in start order:", " ".join(ml_order))
        assert ml_order.index("TRAIN") < len(ml_order) - 1, "the big job starved"
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
