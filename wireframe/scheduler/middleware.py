"""Middleware: async hooks around every submit, every attempt and every durable step.

`Scheduler(..., middleware=[...])` (and `Worker(..., middleware=[...])`) runs them. Subclass
`Middleware` and override the hooks you need; the others cost nothing.

Order: hooks run in list order on the way in (`before_submit`, `before_attempt`,
`before_step`) and in reverse order on the way out (`after_submit`, `submit_failed`,
`on_error`, `after_attempt`, `after_step`), as nested context managers would. Only the
middleware whose way-in hook ran get the way-out hooks.

Metadata: `before_submit` may add to `submission.meta` (str to str); what it holds is stored
with the job, shown in its record (`JobRecord.meta`) and to its handler (`ctx.meta`). A retry is
the same job, with the same metadata; children spawned with `ctx.spawn` start from their
parent's metadata (and their own `before_submit` hooks run, inside the parent's attempt).

Errors:
- `before_submit` raising fails the submit (nothing is stored) with a `MiddlewareError` naming
  the middleware; the submit's `submit_failed` hooks run for those whose `before_submit` ran.
- `before_attempt` raising fails the attempt as a handler error would (the retry policy
  applies; the handler does not run), with a `MiddlewareError` naming the middleware.
- `before_step` raising fails the step: the handler sees the `MiddlewareError`.
- `after_submit`, `submit_failed`, `on_error`, `after_attempt` and `after_step` raising is
  logged (logger `wireframe.middleware`) and ignored: the job and its outcome are kept.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

import attrs

from wireframe.scheduler.errors import SchedulerError

if TYPE_CHECKING:
    from wireframe.scheduler.context import JobContext

__all__ = [
    "AttemptOutcome",
    "AttemptStatus",
    "Middleware",
    "MiddlewareError",
    "Submission",
]


class MiddlewareError(SchedulerError):
    """A middleware hook raised: names the middleware and the hook (the cause is chained)."""

    def __init__(self, middleware: str, hook: str, where: str, error: BaseException) -> None:
        self.middleware = middleware
        self.hook = hook
        self.error = error
        self.reached = 0
        """How many middleware (in list order) were passed before this one."""
        super().__init__(
            f"{where}: middleware {middleware} failed in {hook}: {type(error).__name__}: {error}"
        )


@attrs.define(eq=False)
class Submission:
    """One job being submitted, as middleware sees it; `before_submit` may add to `meta`."""

    type: str
    """The job type, `domain::name`."""
    domain: str
    """The job type's domain."""
    payload: object
    """The payload as the caller gave it."""
    meta: dict[str, str]
    """The metadata to store with the job (str to str): add to it in `before_submit`."""
    parent_id: int | None = None
    """The parent job, for a child (`ctx.spawn` or `submit(parent=...)`)."""
    spawned: bool = False
    """True for a child a running job spawned (`ctx.spawn`, `ctx.spawn_sibling`)."""
    id: int | None = None
    """After the write: the job's id (for a duplicate, the id of the job holding the key)."""
    duplicate: bool = False
    """After the write: True if an active job held the dedup key (nothing new was stored)."""


class AttemptStatus(enum.StrEnum):
    """How an attempt ended."""

    COMPLETED = "completed"
    """The handler returned (a parent may still wait for its children)."""
    RETRY = "retry"
    """It failed (raised, or timed out) and will be retried."""
    FAILED = "failed"
    """It failed and the job ended failed."""
    SUSPENDED = "suspended"
    """A durable sleep, wait or join suspended it: it runs again later, in the same attempt."""
    CANCELLED = "cancelled"
    """The job was cancelled while running."""
    RELEASED = "released"
    """It was handed back without spending an attempt (preempted, paused, worker stopping)."""
    DROPPED = "dropped"
    """The lease was lost: another worker holds the job, this outcome is not stored."""


@attrs.frozen
class AttemptOutcome:
    """How one invocation of a handler ended, as `after_attempt` sees it."""

    status: AttemptStatus
    """Completed, retry, failed, suspended, cancelled, released or dropped."""
    message: str | None = None
    """The error (`Type: message`) of a failure, or why the job was released or suspended."""
    error: BaseException | None = None
    """For RETRY and FAILED: the exception the handler (or a `before_attempt` hook) raised,
    or a `TimeoutError` for a timeout (None for a failure without one, e.g. no handler)."""
    retry_at: float | None = None
    """For RETRY: when the next attempt may start (Unix time)."""

    @property
    def ok(self) -> bool:
        """True unless the attempt failed (RETRY or FAILED)."""
        return self.status not in (AttemptStatus.RETRY, AttemptStatus.FAILED)


class Middleware:
    """Hooks around submits, attempts and durable steps; override those you need.

    Every hook is async and returns None. A middleware keeps what it needs between a way-in
    and a way-out hook itself (keyed by the `Submission` or the `JobContext`, both of which
    are the same object in both calls); the hooks of one attempt run in the task that runs
    its handler, so a context variable set in `before_attempt` is seen by the handler.
    """

    @property
    def name(self) -> str:
        """How errors and logs name this middleware (default: its class name)."""
        return type(self).__name__

    async def before_submit(self, submission: Submission) -> None:
        """Before a job is stored: read it, add to `submission.meta`, or raise to refuse it."""

    async def after_submit(self, submission: Submission) -> None:
        """After it was stored (`submission.id` set; `duplicate` if a job held its key)."""

    async def submit_failed(self, submission: Submission, error: BaseException) -> None:
        """The submit failed (`error`: what it raises); nothing was stored."""

    async def before_attempt(self, ctx: JobContext) -> None:
        """Before the handler runs (each invocation: a re-run after a suspension too)."""

    async def on_error(self, ctx: JobContext, error: BaseException) -> None:
        """The attempt failed: the handler (or a `before_attempt` hook) raised `error`, or it
        timed out (a `TimeoutError`); `after_attempt` follows. Not called for a job cancelled,
        preempted, paused or handed back while it ran: those are not failures."""

    async def after_attempt(self, ctx: JobContext, outcome: AttemptOutcome) -> None:
        """The invocation ended (always called once `before_attempt` returned)."""

    async def before_step(self, ctx: JobContext, name: str) -> None:
        """Before a durable step runs its function (not when a re-run replays it)."""

    async def after_step(self, ctx: JobContext, name: str, error: BaseException | None) -> None:
        """The step's function returned (`error` None) or raised `error`."""
