"""Runners: call each job's handler under its limits and decide the outcome to store."""

from __future__ import annotations

import logging
import math
import time
import traceback
from typing import TYPE_CHECKING, Any

import anyio

from wireframe.durable import LeaseLost, Suspend
from wireframe.scheduler.codec import decode_payload, encode_result
from wireframe.scheduler.domain import HandlerFn, JobType
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
from wireframe.store import FAR_FUTURE, Complete, Fail, LeaseStatus, Outcome, Release
from wireframe.store.records import ReleaseTo

if TYPE_CHECKING:
    from wireframe.scheduler.handoff import Handoff
    from wireframe.scheduler.worker import Worker

log = logging.getLogger("wireframe.scheduler")

STREAK = 64
"""Jobs a runner takes from its queue between yields to the event loop. Jobs that finish without
awaiting anything (the flusher writes the outcomes of one streak at a time) run this many at a
stretch: a longer stretch means fewer, bigger writes; 64 no-op jobs take well under 1 ms."""


async def run_jobs(worker: Worker, jobs: Handoff[Running]) -> None:
    """A runner: take jobs from `jobs` and run them one at a time until the hand-off closes."""
    streak = 0
    while True:
        # One cancel scope serves job after job (entering a scope costs more than a no-op job);
        # a job that is interrupted or times out spends it, and the next job gets a new one.
        running: Running | None = None
        with anyio.CancelScope() as scope:
            while True:
                if worker._runners > worker.limits.max_concurrency + worker._deferred:
                    return  # an extra runner started for a deferred job that has resumed
                # Take queued jobs without a trip through the event loop, but still yield
                # every so often so that the flusher and the claim loop keep up.
                try:
                    running = jobs.get_nowait()
                    streak += 1
                    if streak % STREAK == 0:
                        await anyio.lowlevel.checkpoint()
                except anyio.WouldBlock:
                    streak = 0  # the queue ran dry: the next claim's jobs run in one streak
                    try:
                        running = await jobs.get()
                    except anyio.EndOfStream:
                        return
                except anyio.EndOfStream:
                    return
                outcome = _before(worker, running)
                if not isinstance(outcome, _Run):
                    worker.job_done(running, outcome)
                    running = None
                    continue
                outcome = await _call(worker, running, scope)
                worker.job_done(running, outcome)
                running = None
                if scope.cancel_called:
                    break  # cancelled, but the handler swallowed it: this scope is spent
        if running is not None:  # its handler was cancelled out of the scope
            running.scope = None
            worker.job_done(running, conclude(worker, running, cancelled=scope.cancelled_caught))


class _Run:
    """`_before` found nothing against running the handler."""


_RUN = _Run()


def _before(worker: Worker, running: Running) -> Outcome | _Run | None:
    """The outcome of a job that is not to run its handler, or `_RUN`."""
    record = running.record
    job_type = running.job_type
    if running.stop_reason == "shutdown":
        return Release(record.lease, "pending", "worker shut down before the job started")
    if job_type is None:
        known = ", ".join(sorted(worker.types)) or "none"
        missing = (
            f"no handler for job type {record.type!r} in worker {worker.worker_id} "
            f"(known types: {known})"
        )
        return failure(worker, running, missing, None, permanent=True)
    events = worker.scheduler.events
    if events.subscriber_count:
        events.publish(
            JobStarted(
                job_id=record.id,
                job_type=record.type,
                attempt=record.attempt,
                worker_id=worker.worker_id,
            )
        )
    if _handler(job_type, record.phase) is None:
        return Complete(record.lease, record.result)
    return _RUN


def _handler(job_type: JobType[Any, Any], phase: str) -> HandlerFn | None:
    return job_type.finalize_fn if phase == "finalize" else job_type.execute


async def _call(worker: Worker, running: Running, scope: anyio.CancelScope) -> Outcome | None:
    """Run the handler under the runner's `scope`; a cancellation that ends it leaves by the
    scope, and the runner concludes the job (see `run_jobs`)."""
    record = running.record
    job_type = running.job_type
    assert job_type is not None
    handler = _handler(job_type, record.phase)
    assert handler is not None
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
        return _end(worker, running, scope, error=exc)
    except Suspend as exc:
        return _end(worker, running, scope, suspended=exc)
    except LeaseLost as exc:
        # Refused because the job was asked to stop (cancelled, or a child failed with
        # fail_fast): it still holds its lease, so it ends now, as a cancellation does.
        cancelled = exc.status is LeaseStatus.CANCEL_REQUESTED
        running.stop_reason = "cancelled" if cancelled else "lease_lost"
        return _end(worker, running, scope)
    return _end(worker, running, scope, result=result)


def _end(
    worker: Worker,
    running: Running,
    scope: anyio.CancelScope,
    *,
    result: Any = None,
    error: BaseException | None = None,
    suspended: Suspend | None = None,
) -> Outcome | None:
    running.scope = None
    if scope.deadline != math.inf:
        scope.deadline = math.inf
    return conclude(worker, running, result=result, error=error, suspended=suspended)


def conclude(
    worker: Worker,
    running: Running,
    *,
    cancelled: bool = False,
    result: Any = None,
    error: BaseException | None = None,
    suspended: Suspend | None = None,
) -> Outcome | None:
    """Turn how the handler ended into the outcome to store (None: drop it).

    `cancelled`: its cancel scope caught the cancellation (a timeout, unless the job was
    interrupted).
    """
    record = running.record
    job_type = running.job_type
    assert job_type is not None
    events = worker.scheduler.events
    finalize = record.phase == "finalize"
    reason = running.stop_reason
    if reason is None:
        if error is None and suspended is None and not cancelled:
            # The common case first: a handler that returned.
            if finalize and result is None:
                return Complete(record.lease, record.result)
            return _complete(worker, running, result, finalize)
    elif reason == "lease_lost":
        log.warning("job %s: lease lost; dropping its outcome", record.id)
        return None
    elif reason in ("cancelled", "child_failed"):
        events.publish(JobCancelled(job_id=record.id, job_type=record.type))
        return Release(record.lease, "cancelled", "cancelled while running")
    elif reason in ("preempted", "shutdown", "paused") and (cancelled or error is not None):
        if reason == "preempted":
            events.publish(JobPreempted(job_id=record.id, job_type=record.type))
        to: ReleaseTo = "paused" if reason == "paused" else "pending"
        return Release(record.lease, to, reason)
    if suspended is not None and not cancelled:
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
    if cancelled and reason is None:
        message = f"timed out after {job_type.timeout}s"
        return failure(worker, running, message, None, outcome="timeout")
    if error is not None:
        text = f"{type(error).__name__}: {error}"
        tb = "".join(traceback.format_exception(error))
        return failure(worker, running, text, tb, permanent=isinstance(error, Permanent))
    if finalize and result is None:
        return Complete(record.lease, record.result)
    return _complete(worker, running, result, finalize)


def _complete(worker: Worker, running: Running, result: Any, finalize: bool) -> Outcome:
    record = running.record
    job_type = running.job_type
    assert job_type is not None
    try:
        encoded = (
            "null"
            if result is None
            else encode_result(result, where=lambda: f"result of job {record.id} ({record.type})")
        )
    except Exception as exc:
        return failure(worker, running, f"{type(exc).__name__}: {exc}", None, permanent=True)
    return Complete(record.lease, encoded, not finalize and job_type.finalize_fn is not None)


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
    spent = record.attempts_spent  # a lost worker (a reclaim) spends no attempt
    will_retry = (
        not permanent
        and retry is not None
        and retry.should_retry(spent)
        and spent < record.max_attempts
    )
    retry_at = None
    events = worker.scheduler.events
    if will_retry and retry is not None:
        delay = retry.delay(spent)
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
