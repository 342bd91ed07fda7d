"""How a handler ended, turned into the outcome a worker stores, with the log lines it writes.

The events of an outcome are published once the store has written it, by the completer, from
what the store did (`wireframe.scheduler._completer`).
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

from wireframe.durable import DurableError, Suspend
from wireframe.scheduler._running import Interrupt, Running
from wireframe.scheduler.codec import encode_result
from wireframe.scheduler.errors import Permanent
from wireframe.store import FAR_FUTURE, Complete, Fail, Outcome, Release
from wireframe.store.records import ReleaseTo

log = logging.getLogger("wireframe.scheduler")

_BACK: dict[Interrupt, tuple[ReleaseTo, str]] = {
    Interrupt.PREEMPTED: ("pending", "preempted"),
    Interrupt.SHUTDOWN: ("pending", "worker stopped before the job finished"),
    Interrupt.PAUSED: ("paused", "paused"),
}
"""Where an interrupted job goes back to, and the reason recorded on it."""


def conclude(
    running: Running,
    *,
    cancelled: bool = False,
    result: Any = None,
    error: BaseException | None = None,
    suspended: Suspend | None = None,
) -> Outcome | None:
    """Turn how the handler ended into the outcome to store (None: drop it).

    `cancelled`: its cancel scope caught the cancellation (a timeout, unless the job was
    interrupted). A handler that returned keeps its result even if it was asked to stop.
    """
    reason = running.stop_reason
    if reason is None and error is None and suspended is None and not cancelled:
        return complete(running, result)  # the common case first: a handler that returned
    record = running.record
    if reason is Interrupt.LEASE_LOST:
        log.warning(
            "job %s: lease lost; dropping its outcome", record.id, extra={"job_id": record.id}
        )
        return None
    if reason is Interrupt.CANCELLED:
        return Release(record.lease, "cancelled", "cancelled while running")
    if reason is not None and (cancelled or error is not None):
        return Release(record.lease, *_BACK[reason])
    if suspended is not None and not cancelled:
        until = suspended.until if suspended.until is not None else FAR_FUTURE
        return Release(record.lease, "suspended", suspended.reason, until, suspended.wait_for)
    if cancelled and reason is None:
        assert running.job_type is not None
        message = f"timed out after {running.job_type.timeout}s"
        return failure(running, message, None, outcome="timeout")
    if error is not None:
        text = f"{type(error).__name__}: {error}"
        return failure(running, text, error, permanent=final(error))
    return complete(running, result)


def final(error: BaseException) -> bool:
    """Whether a handler's error ends its job whatever the retry policy: a `Permanent`, or a
    durable error whose cause is recorded (a re-run would raise it again, so a retry would only
    spend attempts: non-determinism, a joined child's failure, a timeout that was recorded)."""
    return isinstance(error, Permanent) or (isinstance(error, DurableError) and error.final)


def complete(running: Running, result: Any) -> Outcome:
    """The completion of a handler that returned `result` (a finalize's None keeps the
    execute handler's result); a result that cannot be encoded fails the job for good."""
    record = running.record
    job_type = running.job_type
    assert job_type is not None
    finalize = record.phase == "finalize"
    if finalize and result is None:
        return Complete(record.lease, record.result)
    try:
        encoded = (
            "null"
            if result is None
            else encode_result(result, where=lambda: f"result of job {record.id} ({record.type})")
        )
    except Exception as exc:
        return failure(running, f"{type(exc).__name__}: {exc}", exc, permanent=True)
    return Complete(record.lease, encoded, not finalize and job_type.finalize_fn is not None)


def failure(
    running: Running,
    error: str,
    exc: BaseException | None,
    *,
    permanent: bool = False,
    outcome: str = "failed",
) -> Fail:
    """A failed attempt: retry at the policy's delay, or end the job. Logged at WARNING when
    it will be retried, at ERROR (with the traceback of `exc`, if any) when it ends the job."""
    record = running.record
    retry = running.job_type.retry if running.job_type is not None else None
    spent = record.attempts_spent  # a lost worker (a reclaim) spends no attempt
    retry_at = None
    if will_retry(running, permanent=permanent) and retry is not None:
        delay = retry.delay(spent)
        retry_at = time.time() + delay
        log.warning(
            "job %s (%s) attempt %s failed, will retry in %.3g s: %s",
            record.id,
            record.type,
            record.attempt,
            delay,
            error,
            extra={"job_id": record.id},
        )
    else:
        log.error(
            "job %s (%s) attempt %s failed: %s",
            record.id,
            record.type,
            record.attempt,
            error,
            exc_info=exc,
            extra={"job_id": record.id},
        )
    tb = "".join(traceback.format_exception(exc)) if exc is not None else None
    return Fail(record.lease, error, tb, retry_at, outcome)


def will_retry(running: Running, *, permanent: bool = False) -> bool:
    """Whether a failure of the job's current attempt is retried (by its retry policy)."""
    record = running.record
    retry = running.job_type.retry if running.job_type is not None else None
    spent = record.attempts_spent  # a lost worker (a reclaim) spends no attempt
    return (
        not permanent
        and retry is not None
        and retry.should_retry(spent)
        and spent < record.max_attempts
    )


def hand_back(running: Running) -> Outcome | None:
    """What a stopping worker writes for a job it still holds, whatever its handler was doing:
    back to `pending` (checkpoints kept, no attempt spent), or where a request sent it."""
    record = running.record
    reason = running.stop_reason
    if reason is Interrupt.LEASE_LOST:
        return None
    if reason is Interrupt.CANCELLED:
        return Release(record.lease, "cancelled", "cancelled while running")
    return Release(
        record.lease, *_BACK[reason if reason is Interrupt.PAUSED else Interrupt.SHUTDOWN]
    )
