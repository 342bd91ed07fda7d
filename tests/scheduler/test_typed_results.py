"""Results come back as the handler declared them: `result()` and `ctx.step` decode the JSON
they keep into the return annotation (attrs classes, nested, in lists; tuples; enums...), so
the types a type checker sees are the ones the code returns."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from wireframe import Domain, Handler, JobContext, PayloadError, Scheduler, Submitted
from wireframe.testing import running

pytestmark = pytest.mark.anyio


class Shape(enum.Enum):
    SQUARE = "square"
    WIDE = "wide"


@attrs.frozen
class Size:
    width: int
    height: int


@attrs.frozen
class Thumb:
    url: str
    size: Size
    shape: Shape
    made: dt.datetime
    variants: list[Size] = attrs.field(factory=list)


@attrs.frozen
class Draft:
    sizes: tuple[int, ...]
    note: str | None


@dataclasses.dataclass(frozen=True)
class Report:
    pages: int


MADE = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def draft(width: int) -> Draft:
    return Draft(sizes=(width, width // 2), note=None)


async def measure(width: int) -> Size:
    return Size(width, width // 2)


def pair(width: int) -> tuple[int, str]:
    return width, "px"


seen: dict[str, list[object]] = {}


def make_domain() -> Domain:
    media = Domain("media")

    @media.job
    async def thumb(job: dict[str, int], ctx: JobContext) -> Thumb:
        plan = await ctx.step("draft", draft, job["width"])
        size = await ctx.step("measure", measure, job["width"])
        both = await ctx.step("pair", pair, job["width"])
        again = await ctx.step("partial", functools.partial(measure, job["width"]))
        seen.setdefault("steps", []).append((plan, size, both, again))
        if job.get("nap"):
            await ctx.sleep("nap", 0.01)  # suspends once: the re-run replays the steps
        return Thumb("s3://t", size, Shape.WIDE, MADE, [Size(w, w) for w in plan.sizes])

    @media.job
    async def untyped(job: dict[str, int], ctx: JobContext):  # type: ignore[no-untyped-def]
        return Size(1, 2)

    @media.job
    async def parent(job: dict[str, int], ctx: JobContext) -> Size:
        await ctx.spawn({}, type="media::untyped")
        return Size(3, 4)

    @parent.finalize
    async def parent_done(job: dict[str, int], ctx: JobContext) -> None:
        return None

    @media.job
    async def report(job: dict[str, int], ctx: JobContext) -> Report:
        return Report(pages=job["pages"])

    class Crop(Handler):
        async def execute(self, job: dict[str, int], ctx: JobContext) -> Size:
            return Size(job["w"], job["w"])

    media.register(Crop)

    @media.job
    async def liar(job: dict[str, int], ctx: JobContext) -> Size:
        return {"depth": 3}  # type: ignore[return-value]

    return media


@pytest.fixture(params=["memory", "sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"


def scheduler(url: str) -> Scheduler:
    return Scheduler(url, domains=[make_domain()], poll_interval=0.02)


async def test_result_is_the_attrs_class_the_handler_declared(store_url: str) -> None:
    media = make_domain()
    async with running(Scheduler(store_url, domains=[media], poll_interval=0.02)) as s:
        out = await s.submit({"width": 640}, type=media.jobs["thumb"])
        assert isinstance(out, Submitted)
        expected = Thumb(
            "s3://t", Size(640, 320), Shape.WIDE, MADE, [Size(640, 640), Size(320, 320)]
        )
        got = await s.result(out, timeout=10)
        assert got == expected and type(got) is Thumb
        assert await s.result(out.id, timeout=10) == expected  # by id too
        by_name = await s.submit({"width": 640}, type="media::thumb")
        assert await s.result(by_name, timeout=10) == expected


async def test_a_submit_only_scheduler_decodes_by_the_types_it_knows(store_url: str) -> None:
    async with running(scheduler(store_url)) as worker:
        client = Scheduler(worker.store, domains=[make_domain()], worker=False)  # its store
        out = await client.submit({"w": 5}, type="media::Crop")
        assert worker.worker is not None
        worker.worker.notify()  # another scheduler's submit: wake the worker now
        assert await client.result(out, timeout=10) == Size(5, 5)


async def test_results_without_an_annotation_or_after_finalize_keep_their_rules(
    store_url: str,
) -> None:
    async with running(scheduler(store_url)) as s:
        out = await s.submit({}, type="media::untyped")
        assert await s.result(out, timeout=10) == {"width": 1, "height": 2}
        kept = await s.submit({}, type="media::parent")
        assert await s.result(kept, timeout=10) == Size(3, 4)  # finalize -> None keeps it


async def test_a_result_that_does_not_fit_its_annotation_is_a_payload_error_naming_the_job(
    store_url: str,
) -> None:
    async with running(scheduler(store_url)) as s:
        out = await s.submit({}, type="media::liar")
        with pytest.raises(PayloadError) as info:
            await s.result(out, timeout=10)
        assert f"result of job {out.id} (media::liar)" in str(info.value)
        assert "Size" in str(info.value)
        record = await s.get(out.id)
        assert record is not None and record.result == '{"depth":3}'


async def test_a_step_returns_what_its_function_returns_on_the_first_run_and_on_replay(
    store_url: str,
) -> None:
    seen.clear()
    async with running(scheduler(store_url)) as s:
        out = await s.submit({"width": 64, "nap": 1}, type="media::thumb")
        await s.result(out, timeout=10)
    runs = seen["steps"]
    assert len(runs) == 2  # the first run, then the replay after the nap
    for plan, size, both, again in runs:
        assert plan == Draft(sizes=(64, 32), note=None) and type(plan.sizes) is tuple
        assert size == Size(64, 32) and type(size) is Size
        assert both == (64, "px")
        assert type(again) is Size


async def test_result_is_the_dataclass_the_handler_declared(store_url: str) -> None:
    async with running(scheduler(store_url)) as s:
        out = await s.submit({"pages": 3}, type="media::report")
        assert await s.result(out, timeout=10) == Report(pages=3)


async def test_the_typed_sample_user_module_runs_as_typed() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "typing"))
    try:
        import good_user
    finally:
        sys.path.pop(0)
    async with running(Scheduler("memory://", domains=[good_user.media], poll_interval=0.02)) as s:
        thumb, summary, events = await good_user.use(s)
    assert type(thumb) is good_user.Thumb and thumb.formats == ["webp", "png"]
    assert type(summary) is good_user.Report and summary.pages == 3
    assert events


def test_the_result_type_of_a_job_type_is_its_handlers_return_annotation() -> None:
    media = make_domain()
    types: dict[str, Any] = {name: t.result_type for name, t in media.jobs.items()}
    assert types["thumb"] is Thumb
    assert types["Crop"] is Size
    assert types["untyped"] is None
    assert types["parent"] is Size
