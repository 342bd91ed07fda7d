"""A job submitted with TracingMiddleware in one process and run in another: the attempt's span
continues the submitter's trace (its parent is the submit span), on a SQLite file and on
PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from wireframe import Scheduler
from wireframe.otel import TracingMiddleware

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "store"))

from otel_app import media  # noqa: E402

from pg_support import drop_schema, new_schema_name, require_pg  # noqa: E402

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    dsn = require_pg()
    schema = new_schema_name("wfo")
    try:
        yield f"{dsn}?schema={schema}"
    finally:
        drop_schema(schema)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the other process runs the job; PostgreSQL is asyncio-only


async def test_the_run_in_another_process_continues_the_submit_trace(
    url: str, tmp_path: Path
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")
    tracing = TracingMiddleware(tracer_provider=provider)
    async with Scheduler(url, domains=[media], worker=False, middleware=[tracing]) as client:
        with tracer.start_as_current_span("request"):
            sub = await client.submit({"width": 300}, type="media::resize")

    spans_file = tmp_path / "spans.jsonl"
    worker = subprocess.run(
        [sys.executable, str(HERE / "otel_app.py"), url, str(sub.id), str(spans_file)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert worker.returncode == 0, worker.stderr

    (submit,) = [s for s in exporter.get_finished_spans() if s.name == "submit media::resize"]
    runs = [json.loads(line) for line in spans_file.read_text().splitlines()]
    assert [r["name"] for r in runs] == ["run media::resize"]
    (run,) = runs
    assert run["trace_id"] == f"{submit.context.trace_id:032x}"
    assert run["parent_id"] == f"{submit.context.span_id:016x}"
    assert run["kind"] == "CONSUMER"
    assert run["attributes"]["wireframe.job.id"] == sub.id
    assert run["attributes"]["wireframe.job.outcome"] == "completed"
