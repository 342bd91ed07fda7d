"""JobContext: what a handler sees of its job and of the scheduler while it runs."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

from wireframe.durable import ChildHandle, DurableRun
from wireframe.scheduler.codec import decode_result
from wireframe.scheduler.errors import ConfigError, SchedulerError
from wireframe.scheduler.events import JobProgress
from wireframe.store import JobRecord

if TYPE_CHECKING:
    from wireframe.scheduler.running import Running
    from wireframe.scheduler.scheduler import Scheduler

T = TypeVar("T")


class JobContext:
    """The handler's view of its job: identity, cancellation, progress, state and children."""

    def __init__(
        self, scheduler: Scheduler, running: Running, global_state: Mapping[type, object]
    ) -> None:
        self._scheduler = scheduler
        self._running = running
        self._global_state = global_state
        self._durable: DurableRun | None = None

    @property
    def job(self) -> JobRecord:
        """The job's record as claimed: id, type, attempt, priority, parent and payload."""
        return self._running.record

    @property
    def cancelled(self) -> bool:
        """True once a stop was requested; return soon, or be cancelled after a grace period."""
        return self._running.stop_reason is not None

    @property
    def phase(self) -> str:
        """`execute` while the handler runs, `finalize` while the finalize handler runs."""
        return self._running.record.phase

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report progress in [0, 1] with an optional message; subscribers see it at once."""
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float)
            or not math.isfinite(fraction)
        ):
            raise ConfigError(
                f"job {self.job.id}: progress fraction must be a number in [0, 1], got {fraction!r}"
            )
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(
                f"job {self.job.id}: progress fraction must be in [0, 1], got {fraction!r}"
            )
        self._running.progress = float(fraction)
        self._running.message = message
        self._scheduler.events.publish(
            JobProgress(
                job_id=self.job.id,
                job_type=self.job.type,
                fraction=float(fraction),
                message=message,
            )
        )

    def state(self, cls: type[T]) -> T:
        """Shared state registered for `cls`: the job's domain first, then the scheduler's."""
        domain = self._scheduler.domain_of(self.job.type)
        found = domain.state_for(cls) if domain is not None else None
        if found is None:
            found = self._global_state.get(cls)
        if found is None:
            for value in self._global_state.values():
                if isinstance(value, cls):
                    found = value
                    break
        if found is None:
            raise LookupError(
                f"job {self.job.id} ({self.job.type}): no state of type {cls.__qualname__} "
                f"registered "
                f"on domain {self.job.domain!r} or on the scheduler"
            )
        return cast(T, found)

    # -- durable calls (recorded once, replayed on every later run) ---------------------------

    @property
    def durable(self) -> DurableRun:
        """The replay engine of this invocation (created on the first durable call)."""
        if self._durable is None:
            scheduler = self._scheduler
            worker = scheduler.require_worker()
            job = self.job
            self._durable = DurableRun(
                scheduler.store,
                job.lease,
                worker.claim_ttl,
                job.type,
                build_child=lambda payload, options: scheduler.build_job(
                    payload, options.pop("type", None), {"parent": job.id, **options}
                ),
                decode_result=decode_result,
            )
        return self._durable

    async def step(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run `fn(*args, **kwargs)` once and checkpoint its JSON result; re-runs return it."""
        return await self.durable.step(name, fn, *args, **kwargs)

    async def sleep(self, name: str, seconds: float) -> None:
        """Durable sleep: the job leaves its slot and runs again from the top after `seconds`."""
        await self.durable.sleep(name, seconds)

    async def sleep_until(self, name: str, when: float) -> None:
        """Durable sleep until the Unix time `when`."""
        await self.durable.sleep_until(name, when)

    async def wait_event(self, name: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait (suspended) for the event `name`; return its payload or raise EventTimeout."""
        return await self.durable.wait_event(name, timeout)

    async def emit_event(self, name: str, payload: object = None) -> bool:
        """Emit an event (a latch: the first emit wins); True if this emit set it."""
        return await self.durable.emit_event(name, payload)

    async def spawn(self, payload: object, **options: Any) -> ChildHandle:
        """Submit a child job (checkpointed: a re-run gets the same child back)."""
        return await self.durable.spawn(payload, options)

    async def spawn_sibling(self, payload: object, **options: Any) -> ChildHandle:
        """Submit a peer of this job under the same parent; an error for a job without a parent."""
        if self.job.parent_id is None:
            raise SchedulerError(
                f"spawn_sibling: job {self.job.id} ({self.job.type}) has no parent, "
                f"so it can have no siblings"
            )
        return await self.durable.spawn(payload, {**options, "parent": self.job.parent_id})

    async def join(self, handle: ChildHandle) -> Any:
        """Wait (suspended) for a child; return its result or raise ChildFailed/ChildCancelled."""
        return await self.durable.join(handle)

    async def now(self) -> float:
        """The current time, recorded once: the same on every re-run."""
        return await self.durable.now()

    async def rand(self) -> float:
        """A random float in [0, 1), recorded once."""
        return await self.durable.rand()

    async def uuid7(self) -> uuid.UUID:
        """A time-ordered UUID, recorded once."""
        return await self.durable.uuid7()

    async def defer_until(self, condition: Callable[[], Any], poll_interval: float = 1.0) -> None:
        """Give the concurrency slot back while polling `condition`, then take one and go on."""
        await self._scheduler.require_worker().defer(self._running, condition, poll_interval)

    async def children(self) -> list[JobRecord]:
        """This job's children, oldest first."""
        return await self._scheduler.store.list_jobs(parent_id=self.job.id, limit=1_000_000)

    async def heartbeat(self) -> None:
        """Extend this job's lease now; if the lease was lost, the handler is cancelled."""
        await self._scheduler.require_worker().heartbeat_now(self._running)
