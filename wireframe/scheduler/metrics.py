"""Scheduler metrics for the HealthServer's ``/metrics``: job counts, outcomes, durations, reclaims.

Two sources, each used for what it measures well:

- **Gauges from the store** (``store.counts()`` at scrape time): jobs by domain, type and state
  across every process sharing the store. A store count cannot make a counter: pruning deletes
  ended jobs, so "completed" would go down.
- **Counters from this process's EventBus**: completions, failed attempts, cancellations, the
  duration histogram and lease reclaims seen by this process's worker. They only go up, as
  Prometheus counters must; a restart resets them, which ``rate()`` handles. Sum them over
  the worker processes for a cluster-wide figure.

The subscription is drained at every scrape; the HealthServer also runs ``background()`` to keep
draining between scrapes, so a fast worker does not overflow the subscription's buffer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from wireframe.scheduler.events import (
    Event,
    EventsLagged,
    JobCancelled,
    JobCompleted,
    JobFailedEvent,
    JobStarted,
)
from wireframe.scheduler.worker import Worker
from wireframe.service.metrics import (
    DEFAULT_BUCKETS,
    Histogram,
    MetricFamily,
    counter,
    gauge,
)

if TYPE_CHECKING:
    from wireframe.scheduler.scheduler import Scheduler

K = TypeVar("K")

EVENT_BUFFER = 65_536
"""Events buffered between two drains before the oldest are dropped (and counted)."""


class SchedulerMetrics:
    """A metrics collector for one Scheduler or standalone Worker; call it to collect."""

    def __init__(
        self, source: Scheduler | Worker, *, buckets: tuple[float, ...] | None = None
    ) -> None:
        self.source = source
        self._subscription = source.events.subscribe(EVENT_BUFFER)
        self.durations = Histogram(
            "wireframe_job_duration_seconds",
            "Run time of completed jobs (last attempt), by type.",
            ("type",),
            DEFAULT_BUCKETS if buckets is None else buckets,
        )
        self.completed: dict[str, int] = {}
        self.failed: dict[tuple[str, bool], int] = {}
        self.cancelled: dict[str, int] = {}
        self.started: dict[str, int] = {}
        self.reclaims: dict[str, int] = {}
        self.dropped = 0
        self._to_check: list[JobStarted] = []

    def close(self) -> None:
        """Stop receiving events."""
        self._subscription.close()

    async def background(self) -> None:
        """Count events as they arrive (run by the HealthServer while it serves)."""
        async for event in self._subscription:
            self._observe(event)
            if self._to_check:
                await self._check_reclaims()

    def _observe(self, event: Event) -> None:
        if isinstance(event, JobCompleted):
            _bump(self.completed, event.job_type)
            self.durations.observe(max(0.0, event.duration), event.job_type)
        elif isinstance(event, JobFailedEvent):
            _bump(self.failed, (event.job_type, event.will_retry))
        elif isinstance(event, JobCancelled):
            _bump(self.cancelled, event.job_type)
        elif isinstance(event, JobStarted):
            _bump(self.started, event.job_type)
            if event.attempt > 1:
                self._to_check.append(event)
        elif isinstance(event, EventsLagged):
            self.dropped += event.missed

    async def _check_reclaims(self) -> None:
        """A started attempt > 1 whose previous attempt ended by lease expiry is a reclaim."""
        checks, self._to_check = self._to_check, []
        store = self.source.store
        for started in checks:
            attempts = await store.attempts(started.job_id)
            previous = [a for a in attempts if a.attempt == started.attempt - 1]
            if previous and previous[0].outcome == "lease_expired":
                _bump(self.reclaims, started.job_type)

    def drain(self) -> None:
        """Count every event buffered so far."""
        while (event := self._subscription.receive_nowait()) is not None:
            self._observe(event)

    async def __call__(self) -> list[MetricFamily]:
        """Collect: store-wide job gauges, then this process's counters and histogram."""
        self.drain()
        if self._to_check:
            await self._check_reclaims()
        source = self.source
        await source.open()
        counts = await source.store.counts()
        worker = source if isinstance(source, Worker) else source.worker
        running = len(worker.running) if worker is not None else 0
        return [
            gauge(
                "wireframe_jobs",
                "Jobs in the store by domain, type and state (all processes).",
                [
                    ({"domain": d, "type": t, "state": str(s)}, n)
                    for (d, t, s), n in sorted(counts.items())
                ],
            ),
            gauge(
                "wireframe_worker_running_jobs",
                "Jobs this process's worker is running now.",
                [({}, running)],
            ),
            counter(
                "wireframe_jobs_started_total",
                "Attempts started by this process, by type.",
                [({"type": t}, n) for t, n in sorted(self.started.items())],
            ),
            counter(
                "wireframe_jobs_completed_total",
                "Jobs completed by this process, by type.",
                [({"type": t}, n) for t, n in sorted(self.completed.items())],
            ),
            counter(
                "wireframe_jobs_failed_total",
                "Failed attempts in this process, by type and whether another attempt follows.",
                [
                    ({"type": t, "will_retry": "true" if r else "false"}, n)
                    for (t, r), n in sorted(self.failed.items())
                ],
            ),
            counter(
                "wireframe_jobs_cancelled_total",
                "Jobs cancelled while this process held them, by type.",
                [({"type": t}, n) for t, n in sorted(self.cancelled.items())],
            ),
            counter(
                "wireframe_lease_reclaims_total",
                "Jobs this process started again after their previous worker's lease expired.",
                [({"type": t}, n) for t, n in sorted(self.reclaims.items())],
            ),
            counter(
                "wireframe_metrics_events_dropped_total",
                "Lifecycle events dropped before the metrics could count them.",
                [({}, self.dropped)],
            ),
            self.durations.family(),
        ]


def scheduler_metrics(source: Scheduler | Worker) -> SchedulerMetrics:
    """A collector for ``HealthServer(..., collectors=[scheduler_metrics(scheduler)])``."""
    return SchedulerMetrics(source)


def _bump(table: dict[K, int], key: K) -> None:
    table[key] = table.get(key, 0) + 1
