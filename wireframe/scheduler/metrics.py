"""Scheduler metrics for the HealthServer's ``/metrics``: job counts, waits, outcomes, durations.

Two sources, each used for what it measures well:

- **Gauges from the store** at scrape time: jobs by domain, type and state (``store.counts()``),
  per domain, how long the longest-waiting ready job has waited (``store.oldest_pending()``),
  per rate limit its tokens, its buckets without one and the jobs it holds back
  (``store.rate_limits()``; a keyed limit is one series, never one per key), and for job types
  with a concurrency key, the pending jobs a key's cap holds back and the most jobs one key
  runs (``store.key_stats()``, never a label per key), across every process sharing the
  store. A store count cannot make a counter: pruning deletes ended jobs, so "completed"
  would go down.
- **Counters from this process's EventBus**: attempts started, completions, failed attempts,
  cancellations, lease reclaims, recurring firings skipped, and the histograms of queue wait
  (ready to started) and of run time by outcome, seen by this process's worker. They only go
  up, as Prometheus counters must; a restart resets them, which ``rate()`` handles. Sum them
  over the worker processes for a cluster-wide figure.

Label values stay bounded: the domains and job types this process registers are reported by
name, every one of them with every state (0 where none); a job type it does not know (a typo
submitted from the CLI, or a type only another process registers) is counted under the type
``(other)`` of its domain, and a domain it does not know under the domain ``(other)``.

The subscription is drained at every scrape; the HealthServer also runs ``background()`` to keep
draining between scrapes, so a fast worker does not overflow the subscription's buffer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, TypeVar

from wireframe.scheduler._key_metrics import key_gauges
from wireframe.scheduler._pause_metrics import paused_gauges
from wireframe.scheduler._rate_metrics import rate_gauges
from wireframe.scheduler.events import (
    Event,
    EventsLagged,
    JobCancelled,
    JobCompleted,
    JobFailedEvent,
    JobPreempted,
    JobStarted,
    JobSuspended,
    JobWaiting,
    ScheduleSkipped,
)
from wireframe.scheduler.flow import rate_limits
from wireframe.scheduler.worker import Worker
from wireframe.service.metrics import (
    DEFAULT_BUCKETS,
    Histogram,
    MetricFamily,
    counter,
    gauge,
)
from wireframe.store import JobState

if TYPE_CHECKING:
    from wireframe.scheduler.domain import Domain
    from wireframe.scheduler.scheduler import Scheduler

K = TypeVar("K")
Series = tuple[str, str]
"""The (domain, type) labels of a series."""

EVENT_BUFFER = 65_536
"""Events buffered between two drains before the oldest are dropped (and counted)."""

OTHER = "(other)"
"""The label value standing for every domain or job type this process does not register (no
domain or job name can be spelled so)."""

QUEUE_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1800.0, 3600.0,
)  # fmt: skip
"""Queue-wait bucket upper bounds (seconds): from a wake-up's milliseconds to an hour's backlog."""

TIMED_OUT = "timed out after "
"""How the error of an attempt that ran out of its ``timeout`` begins (a handler's own error
begins with its exception's class name)."""


class Labels:
    """The bounded (domain, type) labels of the job types a process registers."""

    def __init__(self, domains: Mapping[str, Domain]) -> None:
        self.domains = frozenset(domains)
        self.types: dict[str, Series] = {
            job_type.type: (name, job_type.type)
            for name, domain in domains.items()
            for job_type in domain.jobs.values()
        }

    def of(self, job_type: str, domain: str | None = None) -> Series:
        """The labels of a job type (and the domain stored with it, if known)."""
        known = self.types.get(job_type)
        if known is not None:
            return known
        if domain is None:
            domain = job_type.split("::", 1)[0]
        return (domain if domain in self.domains else OTHER, OTHER)

    def series(self) -> list[Series]:
        """Every series reported even when empty: each type, each domain's (other), (other)."""
        return [
            *self.types.values(),
            *((domain, OTHER) for domain in self.domains),
            (OTHER, OTHER),
        ]

    def domain_names(self) -> list[str]:
        """Every domain label value: the registered domains and (other)."""
        return [*sorted(self.domains), OTHER]


class SchedulerMetrics:
    """A metrics collector for one Scheduler or standalone Worker; call it to collect."""

    def __init__(
        self,
        source: Scheduler | Worker,
        *,
        buckets: tuple[float, ...] | None = None,
        queue_buckets: tuple[float, ...] | None = None,
    ) -> None:
        self.source = source
        self.labels = Labels(source.domains)
        self._declared_rates = rate_limits(
            t for d in source.domains.values() for t in d.jobs.values()
        )
        self._subscription = source.events.subscribe(EVENT_BUFFER)
        self.durations = Histogram(
            "wireframe_job_duration_seconds",
            "Run time of attempts in this process, by domain, type and outcome "
            "(completed, failed, timeout, cancelled).",
            ("domain", "type", "outcome"),
            DEFAULT_BUCKETS if buckets is None else buckets,
        )
        self.queue_wait = Histogram(
            "wireframe_job_queue_wait_seconds",
            "Time from ready to run (submitted, due, retry due, unblocked) to started, "
            "for attempts this process started, by domain and type.",
            ("domain", "type"),
            QUEUE_BUCKETS if queue_buckets is None else queue_buckets,
        )
        known = self.labels.series()
        self.started: dict[Series, int] = dict.fromkeys(known, 0)
        self.completed: dict[Series, int] = dict.fromkeys(known, 0)
        self.failed: dict[tuple[str, str, bool], int] = {
            (d, t, retry): 0 for d, t in known for retry in (False, True)
        }
        self.cancelled: dict[Series, int] = dict.fromkeys(known, 0)
        self.reclaims: dict[Series, int] = dict.fromkeys(known, 0)
        self.skipped: dict[Series, int] = dict.fromkeys(known, 0)
        self.dropped = 0
        self._starts: dict[int, float] = {}
        """When the running attempt of each job this process started began (its event's time)."""
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
        if isinstance(event, EventsLagged):
            self.dropped += event.missed
            return
        series = self.labels.of(event.job_type)
        if isinstance(event, JobStarted):
            self._started(event, series)
        elif isinstance(event, JobCompleted):
            _bump(self.completed, series)
            self._starts.pop(event.job_id, None)
            self.durations.observe(max(0.0, event.duration), *series, "completed")
        elif isinstance(event, JobFailedEvent):
            _bump(self.failed, (*series, event.will_retry))
            outcome = "timeout" if event.error.startswith(TIMED_OUT) else "failed"
            self._ended(event.job_id, event.at, series, outcome)
        elif isinstance(event, JobCancelled):
            _bump(self.cancelled, series)
            self._ended(event.job_id, event.at, series, "cancelled")
        elif isinstance(event, JobPreempted | JobSuspended | JobWaiting):
            self._starts.pop(event.job_id, None)  # not the end of an attempt
        elif isinstance(event, ScheduleSkipped):
            _bump(self.skipped, series)

    def _started(self, event: JobStarted, series: Series) -> None:
        _bump(self.started, series)
        self._starts[event.job_id] = event.at
        if event.queued_for is not None:
            self.queue_wait.observe(event.queued_for, *series)
        if event.attempt > 1:
            self._to_check.append(event)

    def _ended(self, job_id: int, at: float, series: Series, outcome: str) -> None:
        """Time an attempt that ended other than by completing (if this process started it)."""
        began = self._starts.pop(job_id, None)
        if began is not None:
            self.durations.observe(max(0.0, at - began), *series, outcome)

    async def _check_reclaims(self) -> None:
        """A started attempt > 1 whose previous attempt ended by lease expiry is a reclaim."""
        checks, self._to_check = self._to_check, []
        store = self.source.store
        for started in checks:
            attempts = await store.attempts(started.job_id)
            previous = [a for a in attempts if a.attempt == started.attempt - 1]
            if previous and previous[0].outcome == "lease_expired":
                _bump(self.reclaims, self.labels.of(started.job_type))

    def drain(self) -> None:
        """Count every event buffered so far."""
        while (event := self._subscription.receive_nowait()) is not None:
            self._observe(event)

    def _forget_gone(self, running: Iterable[int]) -> None:
        """Forget the starts of jobs the worker no longer holds whose end had no event (a lost
        lease, a hand-back); called right after a drain, so no end event is still queued."""
        held = set(running)
        for job_id in [j for j in self._starts if j not in held]:
            del self._starts[job_id]

    async def __call__(self) -> list[MetricFamily]:
        """Collect: store-wide job gauges, then this process's counters and histograms."""
        source = self.source
        worker = source if isinstance(source, Worker) else source.worker
        running = worker.running if worker is not None else {}
        self.drain()
        self._forget_gone(running)
        if self._to_check:
            await self._check_reclaims()
        store_gauges: list[MetricFamily] = []
        if not source.closed:  # a scrape after the scheduler stopped must not reopen its store
            await source.open()
            counts = await source.store.counts()
            waits = await source.store.oldest_pending()
            rates = await source.store.rate_limits()
            flows = await source.store.paused()
            store_gauges = [
                self._jobs_gauge(counts),
                self._waits_gauge(waits),
                *rate_gauges(self._declared_rates, rates),
                *paused_gauges(self.labels.domains, self.labels.types, flows),
            ]
            keyed = [
                self.labels.of(t.type)
                for d in source.domains.values()
                for t in d.jobs.values()
                if t.key_policy is not None
            ]
            stats = await source.store.key_stats()
            store_gauges.extend(key_gauges(stats, keyed, self.labels.of))
        return [
            *store_gauges,
            gauge(
                "wireframe_worker_running_jobs",
                "Jobs this process's worker is running now.",
                [({}, len(running))],
            ),
            *self._counters(),
            self.durations.family(),
            self.queue_wait.family(),
        ]

    def _jobs_gauge(self, counts: Mapping[tuple[str, str, JobState], int]) -> MetricFamily:
        """Every (domain, type) series in every state, 0 where none; unknown ones (other)."""
        table: dict[Series, dict[JobState, int]] = {s: {} for s in self.labels.series()}
        for (domain, job_type, state), n in counts.items():
            row = table.setdefault(self.labels.of(job_type, domain), {})
            row[state] = row.get(state, 0) + n
        return gauge(
            "wireframe_jobs",
            "Jobs in the store by domain, type and state (all processes); types this process "
            "does not register are counted under type (other).",
            [
                ({"domain": d, "type": t, "state": str(state)}, row.get(state, 0))
                for (d, t), row in sorted(table.items())
                for state in JobState
            ],
        )

    def _waits_gauge(self, waits: Mapping[str, float]) -> MetricFamily:
        """The longest wait of a ready job per domain, 0 where none waits."""
        ages = dict.fromkeys(self.labels.domain_names(), 0.0)
        for domain, age in waits.items():
            label = domain if domain in self.labels.domains else OTHER
            ages[label] = max(ages[label], age)
        return gauge(
            "wireframe_oldest_pending_age_seconds",
            "How long the longest-waiting job ready to run has waited, by domain "
            "(all processes; 0 when none waits).",
            [({"domain": d}, age) for d, age in ages.items()],
        )

    def _counters(self) -> list[MetricFamily]:
        def by_series(table: dict[Series, int]) -> list[tuple[dict[str, str], float]]:
            return [({"domain": d, "type": t}, n) for (d, t), n in sorted(table.items())]

        return [
            counter(
                "wireframe_jobs_started_total",
                "Attempts started by this process, by domain and type.",
                by_series(self.started),
            ),
            counter(
                "wireframe_jobs_completed_total",
                "Jobs completed by this process, by domain and type.",
                by_series(self.completed),
            ),
            counter(
                "wireframe_jobs_failed_total",
                "Failed attempts in this process, by domain, type and whether another follows.",
                [
                    ({"domain": d, "type": t, "will_retry": "true" if r else "false"}, n)
                    for (d, t, r), n in sorted(self.failed.items())
                ],
            ),
            counter(
                "wireframe_jobs_cancelled_total",
                "Jobs cancelled while this process held them, by domain and type.",
                by_series(self.cancelled),
            ),
            counter(
                "wireframe_lease_reclaims_total",
                "Jobs this process started again after their previous worker's lease expired.",
                by_series(self.reclaims),
            ),
            counter(
                "wireframe_schedule_firings_skipped_total",
                "Recurring firings this process skipped because the schedule's previous run "
                "had not ended, by domain and type.",
                by_series(self.skipped),
            ),
            counter(
                "wireframe_metrics_events_dropped_total",
                "Lifecycle events dropped before the metrics could count them.",
                [({}, self.dropped)],
            ),
        ]


def scheduler_metrics(source: Scheduler | Worker) -> SchedulerMetrics:
    """A collector for ``HealthServer(..., collectors=[scheduler_metrics(scheduler)])``."""
    return SchedulerMetrics(source)


def _bump(table: dict[K, int], key: K) -> None:
    table[key] = table.get(key, 0) + 1
