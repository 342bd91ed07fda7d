"""Mistakes `mypy --strict` must catch in a user's module: each line marked `# E: <code>`.

tests/typing/test_mypy.py asserts that mypy reports exactly these lines with these codes.
"""

from __future__ import annotations

import attrs

from wireframe import Domain, Handler, JobContext, Restart, Scheduler, Service


@attrs.frozen
class Resize:
    path: str
    width: int


@attrs.frozen
class Crop:
    path: str


@attrs.frozen
class Thumb:
    url: str
    size: int


media = Domain("media")


def measure(path: str, width: int) -> int:
    return len(path) * width


async def upload(path: str) -> str:
    return f"s3://{path}"


@media.job
async def resize(job: Resize, ctx: JobContext) -> Thumb:
    size = await ctx.step("measure", measure, job.path, job.width)
    size.upper()  # E: attr-defined
    url = await ctx.step("upload", upload, job.path)
    print(url + 1)  # E: operator
    await ctx.step("measure", measure, job.path)  # E: call-overload
    await ctx.step("upload", upload, job.width)  # E: call-overload
    await ctx.spawn(Crop(job.path), delay=5, priorty=1)  # E: call-arg
    return Thumb(url=url, size=size)


class Cropper(Handler[Crop, Thumb]):
    async def execute(self, job: Crop, ctx: JobContext) -> str:  # E: override
        return job.path


cropper = media.register(Cropper)


async def use(sched: Scheduler) -> None:
    await sched.submit(Resize("/a.jpg", 300), priorty=5)  # E: call-arg
    await sched.submit(Resize("/a.jpg", 300), delay="soon")  # E: arg-type
    out = await sched.submit(Resize("/a.jpg", 300), type=resize)
    thumb = await sched.result(out)
    print(thumb.width)  # E: attr-defined
    name: str = thumb.size  # E: assignment
    print(name)
    await sched.submit(Crop("/a.jpg"), type=resize)  # E: misc
    cropped = await sched.result(await sched.submit(Crop("/a.jpg"), type=cropper))
    print(cropped.width)  # E: attr-defined
    async with sched.subscribe() as events:
        async for event in events:
            print(event.job_id)  # E: union-attr


def supervise(service: Service) -> None:
    Restart.on_failure(backoff="fast")  # E: arg-type
    Restart.always(max_restarts=2.5)  # E: arg-type
