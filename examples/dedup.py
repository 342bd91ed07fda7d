"""Dedup: a key makes a second submission of the same work return ``Duplicate(existing_id)``.

    python examples/dedup.py

The ``fetch`` job type derives its key from the payload (``key=lambda f: f.url``), so while a fetch
of a URL is pending or running, submitting it again returns ``Duplicate`` with the id of the job
already queued, and nothing new is stored. Once that job has ended the key is free again. A
submission may also pass its own ``key=``; keys are per job type.
"""

from __future__ import annotations

import logging

import anyio
import attrs

from wireframe import (
    Domain,
    Duplicate,
    JobContext,
    Scheduler,
    Service,
    StopReceiver,
    Submitted,
    TaskKind,
)

web = Domain("web")
fetches = 0


@attrs.frozen
class Fetch:
    url: str


@web.job(key=lambda f: f.url)
async def fetch(job: Fetch, ctx: JobContext) -> str:
    global fetches
    fetches += 1
    await anyio.sleep(0.1)
    return f"<html of {job.url}>"


@attrs.frozen
class Report:
    day: str


@web.job
async def report(job: Report, ctx: JobContext) -> str:
    return f"report for {job.day}"


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/dedup.py` runs it too)."""
    scheduler = Scheduler("memory://", domains=[web])
    service = Service("dedup", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        first = await scheduler.submit(Fetch("https://example.com"))
        again = await scheduler.submit(Fetch("https://example.com"))
        other = await scheduler.submit(Fetch("https://example.org"))
        print(f"first:  {first}")
        print(f"again:  {again}   <- same key while the first is active")
        print(f"other:  {other}")
        assert isinstance(first, Submitted) and isinstance(other, Submitted)
        assert isinstance(again, Duplicate) and again.existing_id == first.id

        # The caller can wait on whichever id it got back: `.id` works for both outcomes.
        print("result:", await scheduler.result(again.id, timeout=10))
        later = await scheduler.submit(Fetch("https://example.com"))
        print(f"later:  {later}   <- the first has ended, so the key is free again")
        assert isinstance(later, Submitted) and later.id != first.id
        await scheduler.result(later.id, timeout=10)
        await scheduler.result(other.id, timeout=10)
        print(f"fetch ran {fetches} times for 4 submissions")

        # An explicit key on the submission, for a type without a key callable.
        a = await scheduler.submit(Report("2024-06-01"), key="daily-report", delay=60)
        b = await scheduler.submit(Report("2024-06-01"), key="daily-report")
        print(f"explicit key: {a} then {b}")
        assert isinstance(b, Duplicate) and b.id == a.id
        await scheduler.cancel(a.id)  # a cancelled job has ended, so the key is free again
        c = await scheduler.submit(Report("2024-06-01"), key="daily-report")
        print(f"after cancelling {a.id}: {c} -> {await scheduler.result(c.id, timeout=10)!r}")
        assert isinstance(c, Submitted)
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
