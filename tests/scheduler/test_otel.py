"""OpenTelemetry: a span per submit and per attempt; the attempt continues the submitter's trace
through the job's metadata; the handler runs inside its span; steps and spawned children are
its children; failures are recorded. Checked with the SDK's in-memory exporter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from wireframe import Domain, Every, JobContext, Retry, Scheduler
from wireframe.otel import TracingMiddleware
from wireframe.testing import running

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return "memory://" if request.param == "memory" else f"sqlite:///{tmp_path / 'jobs.db'}"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    yield memory
    memory.clear()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    return tracer_provider


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def one(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = named(exporter, name)
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_the_attempt_continues_the_submitters_trace(
    url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    media = Domain("media")
    tracer = provider.get_tracer("app")

    @media.job
    async def resize(job: dict[str, int], ctx: JobContext) -> str:
        with tracer.start_as_current_span("inside the handler"):
            await anyio.sleep(0)
        return ctx.meta["traceparent"]

    tracing = TracingMiddleware(tracer_provider=provider)
    async with running(Scheduler(url, domains=[media], middleware=[tracing])) as s:
        with tracer.start_as_current_span("request"):
            sub = await s.submit({"w": 300}, type="media::resize")
        traceparent = await s.result(sub, timeout=10)

    request = one(exporter, "request")
    submit = one(exporter, "submit media::resize")
    run = one(exporter, "run media::resize")
    inner = one(exporter, "inside the handler")
    trace_id = request.context.trace_id
    assert {s.context.trace_id for s in (submit, run, inner)} == {trace_id}
    assert parent_of(submit) == request.context.span_id
    assert parent_of(run) == submit.context.span_id
    assert parent_of(inner) == run.context.span_id
    assert traceparent.startswith(f"00-{trace_id:032x}-{submit.context.span_id:016x}-")
    assert submit.kind is SpanKind.PRODUCER and run.kind is SpanKind.CONSUMER
    assert dict(submit.attributes or {}) == {
        "messaging.system": "wireframe",
        "messaging.operation.type": "send",
        "messaging.operation.name": "submit",
        "messaging.destination.name": "media::resize",
        "messaging.message.id": str(sub.id),
        "wireframe.job.type": "media::resize",
        "wireframe.job.domain": "media",
        "wireframe.job.id": sub.id,
        "wireframe.job.duplicate": False,
    }
    attributes = dict(run.attributes or {})
    assert attributes.pop("wireframe.worker.id")
    assert attributes == {
        "messaging.system": "wireframe",
        "messaging.operation.type": "process",
        "messaging.operation.name": "run",
        "messaging.destination.name": "media::resize",
        "messaging.message.id": str(sub.id),
        "wireframe.job.id": sub.id,
        "wireframe.job.type": "media::resize",
        "wireframe.job.domain": "media",
        "wireframe.job.attempt": 1,
        "wireframe.job.outcome": "completed",
    }
    assert run.status.status_code is StatusCode.UNSET


async def test_failed_attempts_are_errors_with_the_exception(
    url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    media = Domain("media")

    @media.job(retry=Retry.fixed(attempts=2, delay=0.0))
    async def resize(job: dict[str, int], ctx: JobContext) -> None:
        raise OSError(f"disk full on attempt {ctx.job.attempt}")

    tracing = TracingMiddleware(tracer_provider=provider)
    async with running(Scheduler(url, domains=[media], middleware=[tracing])) as s:
        sub = await s.submit({}, type="media::resize")
        with pytest.raises(Exception, match="disk full"):
            await s.result(sub, timeout=10)

    submit = one(exporter, "submit media::resize")
    runs = named(exporter, "run media::resize")
    assert [(r.attributes or {})["wireframe.job.attempt"] for r in runs] == [1, 2]
    assert [(r.attributes or {})["wireframe.job.outcome"] for r in runs] == ["retry", "failed"]
    for attempt, run in enumerate(runs, start=1):
        assert parent_of(run) == submit.context.span_id  # both attempts: the same trace
        assert run.status.status_code is StatusCode.ERROR
        assert run.status.description == f"OSError: disk full on attempt {attempt}"
        (event,) = run.events
        assert event.name == "exception"
        assert (event.attributes or {})["exception.type"] == "OSError"


async def test_children_and_steps_are_children_of_the_attempt(
    url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    media = Domain("media")

    @media.job
    async def thumb(job: dict[str, int], ctx: JobContext) -> int:
        return job["n"] * 2

    @media.job
    async def album(job: dict[str, int], ctx: JobContext) -> int:
        count = await ctx.step("count", lambda: 2)
        handle = await ctx.spawn({"n": count}, type="media::thumb")
        return int(await ctx.join(handle))  # suspends once: the re-run replays step and spawn

    tracing = TracingMiddleware(tracer_provider=provider)
    async with running(Scheduler(url, domains=[media], middleware=[tracing])) as s:
        sub = await s.submit({}, type="media::album")
        assert await s.result(sub, timeout=10) == 4

    album_submit = one(exporter, "submit media::album")
    album_runs = named(exporter, "run media::album")
    step = one(exporter, "step count")
    thumb_submit = one(exporter, "submit media::thumb")
    thumb_run = one(exporter, "run media::thumb")
    first, second = album_runs
    assert [(r.attributes or {})["wireframe.job.outcome"] for r in album_runs] == [
        "suspended",
        "completed",
    ]
    assert parent_of(first) == parent_of(second) == album_submit.context.span_id
    assert parent_of(step) == first.context.span_id
    assert (step.attributes or {})["wireframe.step.name"] == "count"
    assert parent_of(thumb_submit) == first.context.span_id
    assert (thumb_submit.attributes or {})["wireframe.job.parent_id"] == sub.id
    assert parent_of(thumb_run) == thumb_submit.context.span_id
    assert (thumb_run.attributes or {})["wireframe.job.parent_id"] == sub.id
    trace_ids = {s.context.trace_id for s in exporter.get_finished_spans()}
    assert trace_ids == {album_submit.context.trace_id}


async def test_recurring_occurrences_get_their_own_traces_linked_to_the_submit(
    url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    media = Domain("media")
    ran = 0
    two = anyio.Event()

    @media.job
    async def sweep(job: dict[str, int], ctx: JobContext) -> None:
        nonlocal ran
        ran += 1
        if ran == 2:
            two.set()

    tracing = TracingMiddleware(tracer_provider=provider)
    async with running(Scheduler(url, domains=[media], middleware=[tracing])) as s:
        await s.submit({}, type="media::sweep", recurring=Every(0.05, max_occurrences=2))
        with anyio.fail_after(10):
            await two.wait()

    submit = one(exporter, "submit media::sweep")
    runs = [r for r in named(exporter, "run media::sweep")]
    assert len(runs) == 2
    assert len({r.context.trace_id for r in runs} | {submit.context.trace_id}) == 3
    for run in runs:
        assert run.parent is None
        assert [link.context.span_id for link in run.links] == [submit.context.span_id]


async def test_a_finalize_handler_runs_in_a_span_of_its_phase(
    url: str, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    media = Domain("media")

    @media.job
    async def thumb(job: dict[str, int], ctx: JobContext) -> None:
        pass

    @media.job
    async def album(job: dict[str, int], ctx: JobContext) -> None:
        await ctx.spawn({}, type="media::thumb")

    @album.finalize
    async def album_done(job: dict[str, int], ctx: JobContext) -> str:
        return "done"

    tracing = TracingMiddleware(tracer_provider=provider)
    async with running(Scheduler(url, domains=[media], middleware=[tracing])) as s:
        sub = await s.submit({}, type="media::album")
        assert await s.result(sub, timeout=10) == "done"

    submit = one(exporter, "submit media::album")
    runs = named(exporter, "run media::album")
    assert [(r.attributes or {}).get("wireframe.job.phase") for r in runs] == [None, "finalize"]
    assert {parent_of(r) for r in runs} == {submit.context.span_id}
