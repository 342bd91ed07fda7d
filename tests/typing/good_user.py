"""A user's module written the way the README shows: `mypy --strict` must find nothing wrong.

tests/typing/test_mypy.py type-checks it; tests/scheduler/test_typed_results.py runs it, so the
types it relies on are the ones the code returns.
"""

from __future__ import annotations

import dataclasses

import attrs

from wireframe import (
    AttemptOutcome,
    Backoff,
    Domain,
    Duplicate,
    Event,
    Handler,
    JobCompleted,
    JobContext,
    JobNotFound,
    Middleware,
    Priority,
    Rate,
    Restart,
    Scheduler,
    SchedulerError,
    Service,
    StopReceiver,
    Submission,
    Submitted,
    Task,
)


@attrs.frozen
class Resize:
    path: str
    width: int


@attrs.frozen
class Thumb:
    url: str
    size: int
    formats: list[str]


@dataclasses.dataclass(frozen=True)
class Report:
    pages: int
    title: str


media = Domain("media")


def measure(path: str, width: int) -> int:
    return len(path) * width


async def upload(path: str, *, bucket: str = "thumbs") -> str:
    return f"s3://{bucket}/{path}"


def describe(size: int) -> Thumb:
    return Thumb(url="local", size=size, formats=["webp"])


@media.job(retry=3, priority=Priority.HIGH)
async def resize(job: Resize, ctx: JobContext) -> Thumb:
    size = await ctx.step("measure", measure, job.path, job.width)  # a sync function: int
    url = await ctx.step("upload", upload, job.path, bucket="media")  # an async one: str
    draft = await ctx.step("describe", describe, size)  # an attrs class comes back as one
    return Thumb(url=url.upper(), size=size + 1, formats=[*draft.formats, "png"])


@media.job
async def report(job: dict[str, int], ctx: JobContext) -> Report:
    return Report(pages=job["pages"], title="monthly")


class Crop(Handler[Resize, Thumb]):
    async def execute(self, job: Resize, ctx: JobContext) -> Thumb:
        return Thumb(url=job.path, size=job.width, formats=[])


crop = media.register(Crop, name="crop")


@media.job
async def fan_out(job: dict[str, list[str]], ctx: JobContext) -> int:
    for path in job["paths"]:
        await ctx.spawn(Resize(path, 64), type=resize, priority=Priority.LOW, ttl=600.0)
    return len(job["paths"])


async def use(sched: Scheduler) -> tuple[Thumb, Report, list[Event]]:
    out = await sched.submit(Resize("/a.jpg", 300), type=resize, priority=Priority.LOW, delay=0)
    thumb = await sched.result(out, timeout=10)
    width: int = thumb.size
    first: str = thumb.formats[0]
    assert width > 0 and first
    if isinstance(out, Submitted):
        job_id: int = out.id
    else:
        assert isinstance(out, Duplicate)
        job_id = out.existing_id
    cropped = await sched.result(await sched.submit(Resize("/b.jpg", 9), type=crop), timeout=10)
    assert cropped.size == 9
    untyped = await sched.result(job_id)  # by id: Any
    assert untyped is not None
    monthly = await sched.submit({"pages": 3}, type=report, key="monthly", ttl=60)
    summary = await sched.result(monthly, timeout=10)
    pages: int = summary.pages
    assert pages == 3
    seen: list[Event] = []
    async with sched.subscribe(buffer=16) as events:
        await sched.submit({"pages": 1}, type="media::report")
        async for event in events:
            seen.append(event)
            if isinstance(event, JobCompleted):
                duration: float = event.duration
                assert duration >= 0
                break
    try:
        await sched.retry(10_000)
    except JobNotFound as exc:
        missing: int = exc.job_id
        assert missing == 10_000
    except SchedulerError:
        raise
    return thumb, summary, seen


class Consumer(Task):
    id = "consumer"
    restart = Restart.on_failure(Backoff(initial=0.5, max=30.0), max_restarts=5, within=60.0)

    async def run(self, stop: StopReceiver) -> None:
        await stop.wait()


async def tick(stop: StopReceiver) -> None:
    await stop.wait(timeout=1.0)


def supervised_service() -> Service:
    service = Service("app")
    service.add_task(Task.from_fn("tick", tick, restart=Restart.always(1.0)))
    service.add_task(Consumer(restart=Restart.always()), restart=Restart.on_failure(2))
    restarts: int = service.status().tasks[0].restarts
    last: str | None = service.status().tasks[0].last_error
    assert restarts == 0 and last is None
    return service


class Tenant(Middleware):
    async def before_submit(self, submission: Submission) -> None:
        submission.meta.setdefault("tenant", "acme")

    async def after_attempt(self, ctx: JobContext, outcome: AttemptOutcome) -> None:
        tenant: str = ctx.meta.get("tenant", "")
        assert tenant


api = Domain(
    "api",
    rate=Rate(100, per=1.0, burst=20),
    rate_key=lambda call: str(call["tenant"]),
    concurrency_key=lambda call: str(call["tenant"]),
    max_per_key=2,
    weight=1.0,
)


async def flow_control(sched: Scheduler) -> None:
    first = await sched.submit({"tenant": "acme"}, type="api::call", key="acme", debounce=5.0)
    if isinstance(first, Submitted):
        replaced: bool = first.replaced
        assert replaced in (True, False)
    await sched.submit({"tenant": "acme"}, type="api::call", key="acme", throttle=60.0)
    await sched.submit({"tenant": "acme"}, type="api::call", meta={"trace": "x"})
    changed: bool = await sched.pause_domain("api")
    assert changed in (True, False)
    await sched.resume_domain("api")


def traced(middleware: list[Middleware]) -> Scheduler:
    return Scheduler("memory://", domains=[api], middleware=[*middleware, Tenant()])
