"""OpenTelemetry tracing for the scheduler (`pip install 'wireframe[otel]'`).

`Scheduler(..., middleware=[TracingMiddleware()])` traces every job:

- `submit <type>` (kind PRODUCER) for each submit, a child of the caller's current span. Its
  W3C trace context (`traceparent`, `tracestate`) is stored in the job's metadata, so it
  crosses processes with the job.
- `run <type>` (kind CONSUMER) for each invocation of the handler (a retry, or a re-run after
  a durable sleep or join), a child of the submit span: the handler runs inside it, so the
  spans it starts (and the submit spans of the children it spawns) are its children. An
  occurrence of a recurring schedule starts a trace of its own, linked to the schedule's submit.
- `step <name>` (kind INTERNAL) for each durable step that runs (not for replays).

Attributes follow the OpenTelemetry messaging conventions where they fit
(`messaging.system` = "wireframe", `messaging.operation.type` send/process,
`messaging.operation.name`, `messaging.destination.name` = the job type, `messaging.message.id`)
plus `wireframe.job.id`, `.type`, `.domain`, `.attempt`, `.parent_id`, `.duplicate`,
`.outcome`, `.phase` (for a finalize handler), `wireframe.worker.id` and
`wireframe.step.name`. A failed attempt (retried or
final) sets the span's status to ERROR and records the exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.propagators.textmap import TextMapPropagator
    from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("wireframe.otel needs OpenTelemetry: pip install 'wireframe[otel]'") from exc

from wireframe.scheduler.middleware import AttemptOutcome, AttemptStatus, Middleware, Submission

if TYPE_CHECKING:
    from contextvars import Token

    from opentelemetry.context import Context
    from opentelemetry.util.types import AttributeValue

    from wireframe.scheduler.context import JobContext

__all__ = ["TracingMiddleware"]

SYSTEM = "wireframe"
"""The value of `messaging.system`."""

_Open = tuple[Span, "Token[Context]"]
"""A span and the token of the context that made it current."""


class TracingMiddleware(Middleware):
    """Spans for every submit, attempt and durable step; trace context travels in the job's
    metadata (W3C `traceparent` by default), so an attempt continues its submitter's trace."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        propagator: TextMapPropagator | None = None,
    ) -> None:
        from wireframe import __version__

        self.tracer = trace.get_tracer("wireframe", __version__, tracer_provider=tracer_provider)
        self.propagator = propagator or TraceContextTextMapPropagator()
        self._submits: dict[int, Span] = {}
        self._attempts: dict[int, _Open] = {}
        self._steps: dict[int, list[_Open]] = {}

    # -- submits ----------------------------------------------------------------------------

    async def before_submit(self, submission: Submission) -> None:
        """Start the submit span and store its trace context in the job's metadata."""
        attributes: dict[str, AttributeValue] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "submit",
            "messaging.destination.name": submission.type,
            "wireframe.job.type": submission.type,
            "wireframe.job.domain": submission.domain,
        }
        if submission.parent_id is not None:
            attributes["wireframe.job.parent_id"] = submission.parent_id
        span = self.tracer.start_span(
            f"submit {submission.type}", kind=SpanKind.PRODUCER, attributes=attributes
        )
        self._submits[id(submission)] = span
        for key in self.propagator.fields:
            submission.meta.pop(key, None)  # what the parent had is not this job's context
        self.propagator.inject(submission.meta, context=trace.set_span_in_context(span))

    async def after_submit(self, submission: Submission) -> None:
        """End the submit span with the job's id."""
        span = self._submits.pop(id(submission), None)
        if span is None:
            return
        if submission.id is not None:
            span.set_attribute("messaging.message.id", str(submission.id))
            span.set_attribute("wireframe.job.id", submission.id)
        span.set_attribute("wireframe.job.duplicate", submission.duplicate)
        span.end()

    async def submit_failed(self, submission: Submission, error: BaseException) -> None:
        """End the submit span as failed."""
        span = self._submits.pop(id(submission), None)
        if span is None:
            return
        _failed(span, error, f"{type(error).__name__}: {error}")
        span.end()

    # -- attempts ---------------------------------------------------------------------------

    async def before_attempt(self, ctx: JobContext) -> None:
        """Start the run span (continuing the submitter's trace) and make it current."""
        job = ctx.job
        parent, links = self._parent(ctx.meta, recurring=job.schedule_id is not None)
        attributes: dict[str, AttributeValue] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "run",
            "messaging.destination.name": job.type,
            "messaging.message.id": str(job.id),
            "wireframe.job.id": job.id,
            "wireframe.job.type": job.type,
            "wireframe.job.domain": job.domain,
            "wireframe.job.attempt": job.attempt,
        }
        if job.parent_id is not None:
            attributes["wireframe.job.parent_id"] = job.parent_id
        if job.worker_id is not None:
            attributes["wireframe.worker.id"] = job.worker_id
        if job.phase != "execute":
            attributes["wireframe.job.phase"] = job.phase  # the finalize handler
        span = self.tracer.start_span(
            f"run {job.type}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            links=links,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        self._attempts[id(ctx)] = (span, token)

    def _parent(self, meta: Mapping[str, str], *, recurring: bool) -> tuple[Context, list[Link]]:
        """The context a run span starts in, and its links (a recurring occurrence: its own
        trace, linked to the schedule's submit)."""
        extracted = self.propagator.extract(meta)
        submitted = trace.get_current_span(extracted).get_span_context()
        if not submitted.is_valid:
            return otel_context.get_current(), []
        if recurring:
            return otel_context.Context(), [Link(submitted)]
        return extracted, []

    async def on_error(self, ctx: JobContext, error: BaseException) -> None:
        """Record the exception on the run span."""
        found = self._attempts.get(id(ctx))
        if found is not None:
            found[0].record_exception(error)

    async def after_attempt(self, ctx: JobContext, outcome: AttemptOutcome) -> None:
        """End the run span with the outcome (ERROR status for a failure)."""
        found = self._attempts.pop(id(ctx), None)
        if found is None:
            return
        span, token = found
        span.set_attribute("wireframe.job.outcome", str(outcome.status))
        if outcome.status is AttemptStatus.RETRY and outcome.retry_at is not None:
            span.set_attribute("wireframe.job.retry_at", outcome.retry_at)
        if not outcome.ok:
            span.set_status(Status(StatusCode.ERROR, outcome.message))
        span.end()
        otel_context.detach(token)

    # -- steps ------------------------------------------------------------------------------

    async def before_step(self, ctx: JobContext, name: str) -> None:
        """Start a step span, a child of the run span, and make it current."""
        span = self.tracer.start_span(
            f"step {name}",
            kind=SpanKind.INTERNAL,
            attributes={"wireframe.step.name": name, "wireframe.job.id": ctx.job.id},
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        self._steps.setdefault(id(ctx), []).append((span, token))

    async def after_step(self, ctx: JobContext, name: str, error: BaseException | None) -> None:
        """End the step span (ERROR status if the step raised)."""
        stack = self._steps.get(id(ctx))
        if not stack:
            return
        span, token = stack.pop()
        if not stack:
            del self._steps[id(ctx)]
        if error is not None:
            _failed(span, error, f"{type(error).__name__}: {error}")
        span.end()
        otel_context.detach(token)


def _failed(span: Span, error: BaseException, message: str) -> None:
    if isinstance(error, Exception):
        span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, message))
