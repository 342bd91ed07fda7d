"""JobContext: what a handler sees of its job and of the scheduler while it runs."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar, cast

import attrs

from wireframe.scheduler.errors import ConfigError, SchedulerError
from wireframe.scheduler.events import JobProgress
from wireframe.store import JobRecord, SubmitResult, Submitted

if TYPE_CHECKING:
    from wireframe.scheduler.scheduler import Scheduler
    from wireframe.scheduler.worker import Running

T = TypeVar("T")


@attrs.frozen
class ChildHandle:
    """A child job spawned by a handler: pass it to `join`, or read its id."""

    id: int


class JobContext:
    """The handler's view of its job: identity, cancellation, progress, state and children."""

    def __init__(
        self, scheduler: Scheduler, running: Running, global_state: Mapping[type, object]
    ) -> None:
        self._scheduler = scheduler
        self._running = running
        self._global_state = global_state

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

    async def spawn(self, payload: object, **options: Any) -> ChildHandle:
        """Submit a child job; this job waits for its children before it completes."""
        result = await self._scheduler.submit(payload, parent=self.job.id, **options)
        return ChildHandle(_submitted_id(result))

    async def spawn_sibling(self, payload: object, **options: Any) -> ChildHandle:
        """Submit a peer of this job under the same parent; an error for a job without a parent."""
        if self.job.parent_id is None:
            raise SchedulerError(
                f"spawn_sibling: job {self.job.id} ({self.job.type}) has no parent, "
                f"so it can have no siblings"
            )
        result = await self._scheduler.submit(payload, parent=self.job.parent_id, **options)
        return ChildHandle(_submitted_id(result))

    async def children(self) -> list[JobRecord]:
        """This job's children, oldest first."""
        return await self._scheduler.store.list_jobs(parent_id=self.job.id, limit=1_000_000)

    async def heartbeat(self) -> None:
        """Extend this job's lease now; if the lease was lost, the handler is cancelled."""
        await self._scheduler.require_worker().heartbeat_now(self._running)


def _submitted_id(result: SubmitResult) -> int:
    return result.id if isinstance(result, Submitted) else result.existing_id
