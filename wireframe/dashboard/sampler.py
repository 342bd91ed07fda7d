"""The dashboard's one reader of the store's activity: samples it on a cadence, keeps a bounded
history per domain for the plots, and tells live clients when something changed.

However many browsers are open, the store sees one sample per interval (plus the pages the
browsers reload when a sample changed). A sample that takes long stretches the interval: the
sampler spends at most `BUDGET` of its time in the store.
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
"""The largest share of wall time the sampler spends waiting on the store."""

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
    """The latest sample: store activity, workers and schedules, and its version number."""

    activity: Activity
    workers: tuple[WorkerRecord, ...]
    schedules: tuple[ScheduleRecord, ...]
    version: int
    took: float


def _fingerprint(
    activity: Activity, workers: tuple[WorkerRecord, ...], schedules: tuple[ScheduleRecord, ...]
) -> int:
    """What a live page shows of a sample; a change of it makes pages reload."""
    active = tuple(sorted((d, s.value, n) for (d, s), n in activity.active.items()))
    ended = tuple(sorted((d, s.value, n) for (d, s), n in activity.ended.items()))
    crew = tuple((w.info.worker_id, w.info.held, w.lost) for w in workers)
    plans = tuple((s.id, s.state, s.next_run_at, s.occurrences) for s in schedules)
    return hash((active, ended, activity.latest_id, crew, plans))


def check_interval(interval: object) -> float:
    """`interval` as seconds; ValueError naming it unless a positive number."""
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise ValueError(f"dashboard interval={interval!r} must be a positive number of seconds")
    return float(interval)


class Sampler:
    """Samples `store` every `interval` seconds (longer if a sample is slow; see `BUDGET`)."""

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
        self._charged = 0.0

    @property
    def version(self) -> int:
        """Grows by one each time a sample differs from the one before."""
        return self._version

    async def changed(self, version: int) -> int:
        """Wait until the version differs from `version`; return the new one."""
        while self._version == version:
            await self._changed.wait()
        return self._version

    async def sample(self) -> Sample:
        """Read the store once and record what changed."""
        started = self.clock()
        since = self._since if self._since is not None else time.time() - self.interval
        activity = await self.store.activity(since)
        workers = tuple(await self.store.workers())
        schedules = tuple(await self.store.schedules())
        took = self.clock() - started
        self._record(activity, since)
        print_ = _fingerprint(activity, workers, schedules)
        if print_ != self._fingerprint:
            self._fingerprint = print_
            self._version += 1
            self._changed.set()
            self._changed = anyio.Event()
        self.latest = Sample(activity, workers, schedules, self._version, took)
        return self.latest

    def _record(self, activity: Activity, since: float) -> None:
        span = max(activity.now - since, 1e-6)
        self._since = activity.now
        per: dict[str, list[float]] = {domain: [0, 0, 0, 0] for domain in self.series}
        for (domain, state), n in activity.active.items():
            row = per.setdefault(domain, [0, 0, 0, 0])
            if state in QUEUED:
                row[0] += n
            elif state is JobState.RUNNING:
                row[1] += n
        for (domain, state), n in activity.ended.items():
            row = per.setdefault(domain, [0, 0, 0, 0])
            row[2 if state is JobState.COMPLETED else 3] += n
        for domain, (queued, running, completed, failed) in sorted(per.items()):
            points = self.series.get(domain)
            if points is None:
                if len(self.series) >= MAX_DOMAINS:
                    continue
                points = self.series[domain] = deque(maxlen=self.history)
            points.append(
                Point(activity.now, int(queued), int(running), completed / span, failed / span)
            )

    def charge(self, seconds: float) -> None:
        """Count time the dashboard spent in the store outside samples (pages it served): the
        next pause stretches to keep the whole dashboard within `BUDGET`."""
        self._charged += max(0.0, seconds)

    def pause_after(self, took: float) -> float:
        """Seconds to wait before the next sample: the interval, or longer after a slow one
        (or after pages that cost the store time since the last sample)."""
        spent = took + self._charged
        self._charged = 0.0
        return max(self.interval, spent / BUDGET - spent)

    async def run(self) -> None:
        """Sample for ever (cancel to stop); a failing sample is logged and retried later."""
        while True:
            took = 0.0
            try:
                took = (await self.sample()).took
            except Exception as exc:
                log.warning("dashboard: sampling the store failed: %s", exc)
                took = self.interval
            await anyio.sleep(self.pause_after(took))

    def domains(self) -> Mapping[str, deque[Point]]:
        """The plotted domains and their points, oldest first."""
        return self.series
