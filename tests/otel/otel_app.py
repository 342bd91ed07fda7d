"""The job type of the cross-process tracing tests, and a worker process that runs one job with
TracingMiddleware and writes the spans it ends as JSON lines.

python otel_app.py STORE_URL JOB_ID SPANS_FILE
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from wireframe import Domain, JobContext, Scheduler
from wireframe.otel import TracingMiddleware
from wireframe.testing import running

media = Domain("media")


@media.job
async def resize(job: dict[str, int], ctx: JobContext) -> int:
    return job["width"] // 2


class JsonLines(SpanExporter):
    """Appends each span ended to a file, one JSON object a line."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.path.open("a") as out:
            for span in spans:
                record = {
                    "name": span.name,
                    "trace_id": f"{span.context.trace_id:032x}",
                    "span_id": f"{span.context.span_id:016x}",
                    "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                    "kind": span.kind.name,
                    "attributes": dict(span.attributes or {}),
                }
                out.write(json.dumps(record) + "\n")
        return SpanExportResult.SUCCESS


async def main(url: str, job_id: int, spans: Path) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLines(spans)))
    tracing = TracingMiddleware(tracer_provider=provider)
    scheduler = Scheduler(url, domains=[media], middleware=[tracing], poll_interval=0.1)
    async with running(scheduler):
        await scheduler.result(job_id, timeout=60)
    provider.shutdown()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]))
