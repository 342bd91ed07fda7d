"""Running one job: call its handler under its limits and decide the outcome to store."""

from __future__ import annotations

import logging
import time
import traceback
from typing import TYPE_CHECKING, Any

import anyio

from wireframe.durable import LeaseLost, Suspend
from wireframe.scheduler.codec import decode_payload, encode_result
from wireframe.scheduler.errors import Permanent
from wireframe.scheduler.events import (
    JobCancelled,
    JobFailedEvent,
    JobPreempted,
    JobRetrying,
    JobStarted,
    JobSuspended,
)
from wireframe.scheduler.running import Running
from wireframe.store import FAR_FUTURE, Complete, Fail, Outcome, Release
from wireframe.store.records import ReleaseTo

if TYPE_CHECKING:
    from wireframe.scheduler.worker import Worker

log = logging.getLogger("wireframe.scheduler")


async def execute(worker: Worker, running: Running) -> Outcome | None:
    """Run one job's handler and turn what happened into the outcome to store (None: drop it)."""
    record = running.record
    job_type = running.job_type
    events = worker.scheduler.events
    if running.stop_reason == "shutdown":
        return Release(record.lease, "pending", "worker shut down before the job started")
    if job_type is None:
        known = ", ".join(sorted(worker.types)) or "none"
        missing = (
            f"no handler for job type {record.type!r} in worker {worker.worker_id} "
            f"(known types: {known})"
        )
        return failure(worker, running, missing, None, permanent=True)
    if events.subscriber_count:
        events.publish(
            JobStarted(
                job_id=record.id,
                job_type=record.type,
                attempt=record.attempt,
                worker_id=worker.worker_id,
            )
        )
    finalize = record.phase == "finalize"
    handler = job_type.finalize_fn if finalize else job_type.execute
    if handler is None:
        return Complete(record.lease, record.result)
    result: Any = None
    error: BaseException | None = None
    suspended: Suspend | None = None
    timed_out = False
    with anyio.CancelScope() as scope:
        running.scope = scope
        if job_type.timeout is not None:
            scope.deadline = anyio.current_time() + job_type.timeout
        if running.stop_reason is not None:
            scope.deadline = anyio.current_time()
        try:
            payload = decode_payload(record.payload, job_type.payload_type)
            ctx = worker.scheduler.make_context(running)
            result = await handler(payload, ctx)
        except Exception as exc:
            error = exc
        except Suspend as exc:
            suspended = exc
        except LeaseLost:
            running.stop_reason = "lease_lost"
    running.scope = None
    if scope.cancelled_caught:
        timed_out = running.stop_reason is None
    reason = running.stop_reason
    if reason == "lease_lost":
        log.warning("job %s: lease lost; dropping its outcome", record.id)
        return None
    if reason in ("cancelled", "child_failed"):
        events.publish(JobCancelled(job_id=record.id, job_type=record.type))
        return Release(record.lease, "cancelled", "cancelled while running")
    if reason in ("preempted", "shutdown", "paused") and (
        scope.cancelled_caught or error is not None
    ):
        if reason == "preempted":
            events.publish(JobPreempted(job_id=record.id, job_type=record.type))
        to: ReleaseTo = "paused" if reason == "paused" else "pending"
        return Release(record.lease, to, reason)
    if suspended is not None and not scope.cancelled_caught:
        if events.subscriber_count:
            events.publish(
                JobSuspended(
                    job_id=record.id,
                    job_type=record.type,
                    until=suspended.until,
                    reason=suspended.reason,
                )
            )
        until = suspended.until if suspended.until is not None else FAR_FUTURE
        return Release(record.lease, "suspended", suspended.reason, until, suspended.wait_for)
    if timed_out:
        message = f"timed out after {job_type.timeout}s"
        return failure(worker, running, message, None, outcome="timeout")
    if error is not None:
        text = f"{type(error).__name__}: {error}"
        tb = "".join(traceback.format_exception(error))
        return failure(worker, running, text, tb, permanent=isinstance(error, Permanent))
    if finalize and result is None:
        encoded = record.result
    else:
        try:
            encoded = encode_result(result, where=f"result of job {record.id} ({record.type})")
        except Exception as exc:
            return failure(worker, running, f"{type(exc).__name__}: {exc}", None, permanent=True)
    needs_finalize = not finalize and job_type.finalize_fn is not None
    return Complete(record.lease, encoded, needs_finalize)


def failure(
    worker: Worker,
    running: Running,
    error: str,
    tb: str | None,
    *,
    permanent: bool = False,
    outcome: str = "failed",
) -> Fail:
    """A failed attempt: retry at the policy\'s delay, or end the job; publish the events."""
    record = running.record
    retry = running.job_type.retry if running.job_type is not None else None
    will_retry = (
        not permanent
        and retry is not None
        and retry.should_retry(record.attempt)
        and record.attempt < record.max_attempts
    )
    retry_at = None
    events = worker.scheduler.events
    if will_retry and retry is not None:
        delay = retry.delay(record.attempt)
        retry_at = time.time() + delay
        events.publish(
            JobRetrying(job_id=record.id, job_type=record.type, attempt=record.attempt, delay=delay)
        )
    events.publish(
        JobFailedEvent(
            job_id=record.id,
            job_type=record.type,
            error=error,
            attempt=record.attempt,
            will_retry=will_retry,
        )
    )
    log.info(
        "job %s (%s) attempt %s failed: %s%s",
        record.id,
        record.type,
        record.attempt,
        error,
        " (will retry)" if will_retry else "",
    )
    return Fail(record.lease, error, tb, retry_at, outcome)
