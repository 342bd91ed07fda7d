"""Running a scheduler's middleware: the chain of hooks around submits, attempts and steps.

Contract: way-in hooks in list order, way-out hooks in reverse, only for the middleware whose
way-in hook ran; a way-in hook that raises becomes a `MiddlewareError` naming it, a way-out
hook that raises is logged and ignored. Only middleware that override a hook are called for it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, TypeVar

import anyio
import attrs

from wireframe.durable import LeaseLost
from wireframe.scheduler._meta import check_meta
from wireframe.scheduler._outcome import will_retry
from wireframe.scheduler._running import Interrupt, Running
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.middleware import (
    AttemptOutcome,
    AttemptStatus,
    Middleware,
    MiddlewareError,
    Submission,
)
from wireframe.store import Complete, Duplicate, Fail, LeaseStatus, NewJob, Outcome, Submitted

if TYPE_CHECKING:
    from wireframe.scheduler.context import JobContext

log = logging.getLogger("wireframe.middleware")

R = TypeVar("R")

EXIT_TIMEOUT = 5.0
"""Seconds the way-out hooks of a cancelled attempt or submit may take (they run shielded)."""

_HOOKS = (
    "before_submit",
    "after_submit",
    "submit_failed",
    "before_attempt",
    "on_error",
    "after_attempt",
    "before_step",
    "after_step",
)


def _overrides(middleware: Middleware, hook: str) -> bool:
    return getattr(type(middleware), hook) is not getattr(Middleware, hook)


def check_middleware(middleware: Iterable[object], where: str) -> tuple[Middleware, ...]:
    """The middleware given, each checked to be a `Middleware`."""
    if isinstance(middleware, str | bytes) or not isinstance(middleware, Iterable):
        raise ConfigError(f"{where} middleware must be a list of Middleware, got {middleware!r}")
    checked: list[Middleware] = []
    for item in middleware:
        if not isinstance(item, Middleware):
            raise ConfigError(
                f"{where} middleware: {item!r:.100} is not a Middleware "
                f"(subclass wireframe.Middleware)"
            )
        checked.append(item)
    return tuple(checked)


def chain_of(middleware: Sequence[Middleware]) -> Chain | None:
    """The chain of `middleware`, or None when there is none (nothing to run)."""
    return Chain(middleware) if middleware else None


class Chain:
    """The middleware of one scheduler or worker, indexed by the hooks each overrides.

    A way-in stops at the middleware that raised: `reached` of them (in list order) were
    passed, and the way-out hooks run for those only.
    """

    def __init__(self, middleware: Sequence[Middleware]) -> None:
        self.middleware = tuple(middleware)
        self._by_hook = {
            hook: tuple((i, m) for i, m in enumerate(self.middleware) if _overrides(m, hook))
            for hook in _HOOKS
        }
        self.submits = any(self._by_hook[h] for h in _HOOKS[:3])
        self.attempts = any(self._by_hook[h] for h in _HOOKS[3:6])
        self.steps = any(self._by_hook[h] for h in _HOOKS[6:])

    async def way_in(self, hook: str, where: str, *args: object) -> int:
        """Run `hook` in list order; how many middleware were passed (all of them). A hook that
        raises is a MiddlewareError carrying `reached`."""
        for index, middleware in self._by_hook[hook]:
            try:
                await getattr(middleware, hook)(*args)
            except Exception as exc:
                error = MiddlewareError(middleware.name, hook, where, exc)
                error.reached = index
                raise error from exc
        return len(self.middleware)

    async def way_out(self, hook: str, reached: int, *args: object) -> None:
        """Run `hook` in reverse order for the first `reached` middleware; errors are logged."""
        for index, middleware in reversed(self._by_hook[hook]):
            if index < reached:
                try:
                    await getattr(middleware, hook)(*args)
                except Exception:
                    log.exception("middleware %s failed in %s (ignored)", middleware.name, hook)

    # -- submits ----------------------------------------------------------------------------

    async def submit(
        self,
        payloads: Sequence[object],
        jobs: list[NewJob],
        write: Callable[[list[NewJob]], Awaitable[Sequence[R]]],
        *,
        spawned: bool = False,
    ) -> Sequence[R]:
        """Run the submit hooks of `jobs` around `write` (which stores them, in one go)."""
        subs = [
            Submission(job.type, job.domain, payload, dict(job.meta), job.parent_id, spawned)
            for payload, job in zip(payloads, jobs, strict=True)
        ]
        reached = [0] * len(subs)
        try:
            for i, sub in enumerate(subs):
                try:
                    reached[i] = await self.way_in("before_submit", f"submit {sub.type}", sub)
                except MiddlewareError as exc:
                    reached[i] = exc.reached
                    raise
                sub.meta = check_meta(sub.meta, where=f"submit {sub.type} meta (middleware)")
            stored = [
                job if job.meta == sub.meta else attrs.evolve(job, meta=sub.meta)
                for job, sub in zip(jobs, subs, strict=True)
            ]
            results = await write(stored)
        except BaseException as exc:
            with anyio.CancelScope(shield=True), anyio.move_on_after(EXIT_TIMEOUT):
                for i in reversed(range(len(subs))):
                    await self.way_out("submit_failed", reached[i], subs[i], exc)
            raise
        for i in reversed(range(len(subs))):
            sub, result = subs[i], results[i]
            _note(sub, result)
            if isinstance(result, LeaseStatus):
                await self.way_out("submit_failed", reached[i], sub, LeaseLost(result))
            else:
                await self.way_out("after_submit", reached[i], sub)
        return results

    # -- attempts and steps -----------------------------------------------------------------

    def attempt(self, ctx: JobContext) -> AttemptHooks:
        """The hooks of one invocation of a handler."""
        return AttemptHooks(self, ctx)

    async def step(self, ctx: JobContext, name: str, run: Callable[[], Awaitable[R]]) -> R:
        """Run a durable step's work (`run`) inside the step hooks."""
        job = ctx.job
        reached = 0
        try:
            reached = await self.way_in(
                "before_step", f"job {job.id} ({job.type}): step {name!r}", ctx, name
            )
            result = await run()
        except BaseException as exc:
            if isinstance(exc, MiddlewareError) and not reached:
                reached = exc.reached
            await self.way_out("after_step", reached, ctx, name, exc)
            raise
        await self.way_out("after_step", reached, ctx, name, None)
        return result


class AttemptHooks:
    """The hooks of one invocation: `enter` before the handler, `exit` with how it ended."""

    def __init__(self, chain: Chain, ctx: JobContext) -> None:
        self.chain = chain
        self.ctx = ctx
        self.reached = 0
        self.exited = False

    async def enter(self) -> None:
        """Run `before_attempt` in list order; a hook that raises is a MiddlewareError."""
        job = self.ctx.job
        where = f"job {job.id} ({job.type}) attempt {job.attempt}"
        try:
            self.reached = await self.chain.way_in("before_attempt", where, self.ctx)
        except MiddlewareError as exc:
            self.reached = exc.reached
            raise

    async def exit(self, outcome: AttemptOutcome) -> None:
        """Run `on_error` (if it failed with an exception) then `after_attempt`, in reverse."""
        if self.exited:
            return
        self.exited = True
        if outcome.error is not None:
            await self.chain.way_out("on_error", self.reached, self.ctx, outcome.error)
        await self.chain.way_out("after_attempt", self.reached, self.ctx, outcome)

    async def exit_shielded(self, outcome: AttemptOutcome) -> None:
        """`exit`, shielded from cancellation and bounded by EXIT_TIMEOUT (a cancelled job)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(EXIT_TIMEOUT):
            await self.exit(outcome)


def outcome_of(outcome: Outcome | None, error: BaseException | None = None) -> AttemptOutcome:
    """What middleware see of the outcome a worker stores (None: dropped)."""
    if outcome is None:
        return AttemptOutcome(AttemptStatus.DROPPED, "lease lost", error)
    if isinstance(outcome, Complete):
        return AttemptOutcome(AttemptStatus.COMPLETED)
    if isinstance(outcome, Fail):
        status = AttemptStatus.FAILED if outcome.retry_at is None else AttemptStatus.RETRY
        return AttemptOutcome(status, outcome.error, error, outcome.retry_at)
    to = {
        "suspended": AttemptStatus.SUSPENDED,
        "cancelled": AttemptStatus.CANCELLED,
    }.get(outcome.to, AttemptStatus.RELEASED)
    return AttemptOutcome(to, outcome.reason)  # what the handler raised while stopping is moot


def expected_on_cancel(running: Running, scope: anyio.CancelScope) -> AttemptOutcome:
    """What middleware see of a handler cancelled out of its runner's `scope`: the outcome the
    runner will store (worked out here without storing or logging anything)."""
    reason = running.stop_reason
    if reason is Interrupt.LEASE_LOST:
        return AttemptOutcome(AttemptStatus.DROPPED, "lease lost")
    if reason is Interrupt.CANCELLED:
        return AttemptOutcome(AttemptStatus.CANCELLED, "cancelled while running")
    if reason is None and scope.cancel_called:
        assert running.job_type is not None
        status = AttemptStatus.RETRY if will_retry(running) else AttemptStatus.FAILED
        message = f"timed out after {running.job_type.timeout}s"
        return AttemptOutcome(status, message, TimeoutError(message))
    return AttemptOutcome(AttemptStatus.RELEASED, str(reason.value if reason else "stopped"))


def _note(sub: Submission, result: object) -> None:
    """Record on `sub` what the write did."""
    if isinstance(result, Submitted):
        sub.id = result.id
    elif isinstance(result, Duplicate):
        sub.id, sub.duplicate = result.existing_id, True
    elif isinstance(result, int):
        sub.id = result
