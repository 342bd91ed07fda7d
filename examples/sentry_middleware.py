"""Middleware: a Sentry-style error reporter in about 20 lines.

    python examples/sentry_middleware.py

``ErrorReporter`` stamps each submission with the caller's request id (metadata travels with
the job: its record, ``ctx.meta``, its spawned children) and reports every failed attempt, with
the exception object and the job's identity, to a callable. Here the callable prints; with
Sentry it would be ``lambda error, tags: sentry_sdk.capture_exception(error, tags=tags)``.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable

import anyio

from wireframe import Domain, JobContext, Middleware, Retry, Scheduler, Submission
from wireframe.testing import running

request_id = contextvars.ContextVar("request_id", default="-")


class ErrorReporter(Middleware):
    """Reports every failed attempt to `report(error, tags)`."""

    def __init__(self, report: Callable[[BaseException, dict[str, str]], None]) -> None:
        self.report = report

    async def before_submit(self, submission: Submission) -> None:
        submission.meta.setdefault("request_id", request_id.get())

    async def on_error(self, ctx: JobContext, error: BaseException) -> None:
        job = ctx.job
        tags = {"job.id": str(job.id), "job.type": job.type, "job.attempt": str(job.attempt)}
        self.report(error, {**tags, **ctx.meta})


billing = Domain("billing")


@billing.job(retry=Retry.fixed(attempts=3, delay=0.05))
async def charge(job: dict[str, int], ctx: JobContext) -> str:
    if ctx.job.attempt < 3:
        raise ConnectionError(f"gateway timeout on attempt {ctx.job.attempt}")
    return f"charged {job['cents']} cents for request {ctx.meta['request_id']}"


def print_report(error: BaseException, tags: dict[str, str]) -> None:
    print(f"reported {type(error).__name__}: {error} {tags}")


async def main() -> None:
    reporter = ErrorReporter(print_report)
    async with running(Scheduler("memory://", domains=[billing], middleware=[reporter])) as s:
        request_id.set("req-42")
        submitted = await s.submit({"cents": 1250}, type="billing::charge")
        print(await s.result(submitted, timeout=10))


if __name__ == "__main__":
    anyio.run(main)
