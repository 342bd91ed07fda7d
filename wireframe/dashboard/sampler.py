"""The dashboard's one reader of the store's activity: samples it on a cadence, keeps a bounded
history per domain for the plots, and tells live clients when something changed.

However many browsers are open, the store sees one sample per interval, plus the pages the
browsers reload when a sample changed. All of it is paid from one allowance of store time that
grows by `BUDGET` of the wall time: the dashboard keeps the store busy at most 1 % of the time.
A tick (jobs ended since the last one, the latest id, workers, schedules: indexed reads whose
cost follows the rate of work, not the size of the store) runs while the allowance is not
overdrawn; counting the active jobs, whose cost grows with the backlog, runs only when the
allowance covers what the last count cost; meanwhile the previous counts stand.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping

import anyio
import attrs

from wireframe.store import Activity, JobState, ScheduleRecord, Store, WorkerRecord

log = logging.getLogger("wireframe.dashboard")

BUDGET = 0.01
"""The largest share of wall time the dashboard spends waiting on the store."""

MAX_ALLOWANCE = 2.0
"""Seconds of store time the allowance saves up at most (after a quiet spell)."""

ROW_COST = 5e-6
"""Seconds one active job is assumed to cost a count of them, at least (measured: 2 to 3 µs
on a million jobs, more on a busy machine); see `Sampler._count_estimate`."""

HISTORY = 300
"""Points kept per domain (at the default 2 s interval: the last ten minutes)."""

MAX_DOMAINS = 50
"""Domains with a history of their own; later ones are not plotted (memory stays bounded)."""

QUEUED = (JobState.PENDING,)
"""The states plotted as queue depth: ready to run, waiting for a worker."""


@attrs.frozen
class Point:
    """One sample of a domain: when (UNIX time), queue depth, running, and ends per second."""

    at: float
    queued: int
    running: int
    completed_rate: float
    failed_rate: float


@attrs.frozen
class Sample:
    """The latest sample: store activity, active counts (as of `counted_at`, UNIX time),
    workers and schedules, and its version number."""

    activity: Activity
    active: Mapping[tuple[str, JobState], int]
    counted_at: float
    workers: tuple[WorkerRecord, ...]
    schedules: tuple[ScheduleRecord, ...]
    version: int


def _fingerprint(sample: Sample) -> int:
    """What a live page shows of a sample; a change of it makes pages reload."""
    active = tuple(sorted((d, s.value, n) for (d, s), n in sample.active.items()))
    ended = tuple(sorted((d, s.value, n) for (d, s), n in sample.activity.ended.items()))
    crew = tuple((w.info.worker_id, w.info.held, w.lost) for w in sample.workers)
    plans = tuple((s.id, s.state, s.next_run_at, s.occurrences) for s in sample.schedules)
    return hash((active, ended, sample.activity.latest_id, crew, plans))


def check_interval(interval: object) -> float:
    """`interval` as seconds; ValueError naming it unless a positive number."""
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise ValueError(f"dashboard interval={interval!r} must be a positive number of seconds")
    return float(interval)


class Sampler:
    """Samples `store` every `interval` seconds within the store-time budget (see above)."""

    def __init__(
        self,
        store: Store,
        *,
        interval: float = 2.0,
        history: int = HISTORY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_interval(interval)
        self.store = store
        self.interval = float(interval)
        self.history = history
        self.clock = clock
        self.series: dict[str, deque[Point]] = {}
        self.latest: Sample | None = None
        self._fingerprint: int | None = None
        self._version = 0
        self._changed = anyio.Event()
        self._since: float | None = None
        self._allowance = 0.0
        self._earned_at = clock()
        self._row_cost = ROW_COST
        self._counted_id = 0
        self._ended_since_count = 0
        self._active: Mapping[tuple[str, JobState], int] | None = None
        self._counted_at = 0.0

    @property
    def version(self) -> int:
        """Grows by one each time a sample differs from the one before."""
        return self._version

    @property
    def allowance(self) -> float:
        """Seconds of store time the dashboard may spend now (negative: overdrawn)."""
        now = self.clock()
        self._allowance = min(MAX_ALLOWANCE, self._allowance + (now - self._earned_at) * BUDGET)
        self._earned_at = now
        return self._allowance

    def charge(self, seconds: float) -> None:
        """Pay store time spent (by a sample, or a page the dashboard served)."""
        self._allowance -= max(0.0, seconds)

    def _count_estimate(self, activity: Activity) -> float:
        """What counting the active jobs would cost now: the active jobs of the last count,
        plus those submitted since, less those ended since, at the cost per job measured then.
        Paying before, not after, keeps a backlog that grew meanwhile within the budget."""
        last = sum(self._active.values()) if self._active else 0
        submitted = max(0, (activity.latest_id or 0) - self._counted_id)
        ended = self._ended_since_count + sum(activity.ended.values())
        return max(0, last + submitted - ended) * self._row_cost

    async def changed(self, version: int) -> int:
        """Wait until the version differs from `version`; return the new one."""
        while self._version == version:
            await self._changed.wait()
        return self._version

    async def sample(self, *, free: bool = False) -> Sample:
        """Read the store once and record what changed; count the active jobs too if the
        allowance covers it (or if `free`, or never counted). `free`: charge nothing (the
        first sample, at start)."""
        since = self._since if self._since is not None else time.time() - self.interval
        started = self.clock()
        activity = await self.store.activity(since)
        workers = tuple(await self.store.workers())
        schedules = tuple(await self.store.schedules())
        took = self.clock() - started
        if self._active is None or free or self.allowance - took >= self._count_estimate(activity):
            started = self.clock()
            self._active = await self.store.active_counts()
            cost = self.clock() - started
            took += cost
            self._row_cost = max(ROW_COST, cost / max(1, sum(self._active.values())))
            self._counted_at = activity.now
            self._counted_id = activity.latest_id or 0
            self._ended_since_count = 0
        else:
            self._ended_since_count += sum(activity.ended.values())
        if not free:
            self.charge(took)
        return self._publish(activity, workers, schedules, since)

    def _publish(
        self,
        activity: Activity,
        workers: tuple[WorkerRecord, ...],
        schedules: tuple[ScheduleRecord, ...],
        since: float,
    ) -> Sample:
        assert self._active is not None
        sample = Sample(activity, self._active, self._counted_at, workers, schedules, self._version)
        self._record(sample, since)
        print_ = _fingerprint(sample)
        if print_ != self._fingerprint:
            self._fingerprint = print_
            self._version += 1
            self._changed.set()
            self._changed = anyio.Event()
            sample = attrs.evolve(sample, version=self._version)
        self.latest = sample
        return sample

    def _record(self, sample: Sample, since: float) -> None:
        now = sample.activity.now
        span = max(now - since, 1e-6)
        self._since = now
        per: dict[str, list[float]] = {domain: [0, 0, 0, 0] for domain in self.series}
        for (domain, state), n in sample.active.items():
            row = per.setdefault(domain, [0, 0, 0, 0])
            if state in QUEUED:
                row[0] += n
            elif state is JobState.RUNNING:
                row[1] += n
        for (domain, state), n in sample.activity.ended.items():
            row = per.setdefault(domain, [0, 0, 0, 0])
            row[2 if state is JobState.COMPLETED else 3] += n
        for domain, (queued, running, completed, failed) in sorted(per.items()):
            points = self.series.get(domain)
            if points is None:
                if len(self.series) >= MAX_DOMAINS:
                    continue
                points = self.series[domain] = deque(maxlen=self.history)
            points.append(Point(now, int(queued), int(running), completed / span, failed / span))

    async def run(self) -> None:
        """Sample every interval while the allowance is not overdrawn (cancel to stop); a
        failing sample is logged and tried again at the next interval."""
        while True:
            if self.allowance >= 0:
                try:
                    await self.sample()
                except Exception as exc:
                    log.warning("dashboard: sampling the store failed: %s", exc)
            await anyio.sleep(self.interval)

    def domains(self) -> Mapping[str, deque[Point]]:
        """The plotted domains and their points, oldest first."""
        return self.series
