"""Retries: exponential backoff, ``Permanent`` errors, and per-job timeouts.

    python examples/retries.py

- ``flaky`` fails twice with a transient error and succeeds on its third attempt; with
  ``Retry.exponential(attempts=4, base=0.1, cap=1.0)`` it waits about 0.1 s, then 0.2 s.
- ``validate`` raises ``Permanent``: the job fails at once, its retry budget untouched.
- ``slow`` has ``timeout=0.2``: each attempt is cancelled after 0.2 s and counts as a failed
  attempt; after ``Retry.fixed(attempts=2, delay=0.1)`` the job has failed for good.
The ended jobs keep their error, traceback text and attempt count. ``scheduler.retry(id)`` runs a
failed job again with a fresh budget.
"""

from __future__ import annotations

import logging

import anyio
import attrs

from wireframe import (
    Domain,
    JobContext,
    JobFailed,
    JobRetrying,
    Permanent,
    Retry,
    Scheduler,
    Service,
    StopReceiver,
    TaskKind,
)

work = Domain("work")
fixed_input = False


@attrs.frozen
class Order:
    id: int


@work.job(retry=Retry.exponential(attempts=4, base=0.1, cap=1.0))
async def flaky(job: Order, ctx: JobContext) -> str:
    if ctx.job.attempt < 3:
        raise ConnectionError(f"payment gateway unreachable (attempt {ctx.job.attempt})")
    return f"order {job.id} charged on attempt {ctx.job.attempt}"


@attrs.frozen
class Upload:
    name: str


@work.job(retry=Retry.exponential(attempts=5, base=0.1))
async def validate(job: Upload, ctx: JobContext) -> str:
    if not fixed_input:
        raise Permanent(f"{job.name}: not a valid image; retrying cannot help")
    return f"{job.name} is valid"


@attrs.frozen
class Crunch:
    n: int


@work.job(retry=Retry.fixed(attempts=2, delay=0.1), timeout=0.2)
async def slow(job: Crunch, ctx: JobContext) -> None:
    await anyio.sleep(10)  # far longer than the timeout


def build_service() -> Service:
    """The example as a Service (`wireframe run examples/retries.py` runs it too)."""
    scheduler = Scheduler("memory://", domains=[work])
    service = Service("retries", graceful_timeout=5.0)
    service.add_task(scheduler)

    @service.task(kind=TaskKind.ONESHOT)
    async def demo(stop: StopReceiver) -> None:
        global fixed_input
        print("policies:", flaky.retry.describe(), "|", slow.retry.describe())
        async with scheduler.subscribe() as events:
            a = await scheduler.submit(Order(7))
            print(await scheduler.result(a.id, timeout=10))
            while (event := events.receive_nowait()) is not None:
                if isinstance(event, JobRetrying):
                    print(f"  attempt {event.attempt} failed; retrying in {event.delay:.2f} s")

        b = await scheduler.submit(Upload("cat.txt"))
        c = await scheduler.submit(Crunch(1))
        for out in (b, c):
            try:
                await scheduler.result(out.id, timeout=10)
            except JobFailed as exc:
                job = await scheduler.get(out.id)
                assert job is not None
                print(f"job {job.id} ({job.type}) {job.state} after {job.attempt} attempt(s):")
                print(f"  error: {exc.error}")
                assert job.traceback is None or "Traceback" in job.traceback
        assert (await scheduler.get(b.id)).attempt == 1  # type: ignore[union-attr]
        assert (await scheduler.get(c.id)).attempt == 2  # type: ignore[union-attr]

        fixed_input = True  # say the input was fixed: run the failed job again
        await scheduler.retry(b.id)
        print(f"after retry({b.id}):", await scheduler.result(b.id, timeout=10))
        service.stop("demo finished")

    return service


def main() -> int:
    return build_service().run_sync(log_level=logging.WARNING)


if __name__ == "__main__":
    raise SystemExit(main())
