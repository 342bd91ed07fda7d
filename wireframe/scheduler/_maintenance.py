"""A worker's chores besides running jobs: aging waiting jobs, pruning history, firing schedules,
keeping its row in the store's workers table."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import anyio

from wireframe.scheduler._hub import Hub
from wireframe.scheduler.clock import Clock
from wireframe.scheduler.events import JobSubmitted, ScheduleSkipped
from wireframe.scheduler.priority import AGING_STEP, PRIORITY_MAX
from wireframe.scheduler.recurring import recurrence_from_json
from wireframe.store import Fired, ScheduleRecord, WorkerInfo

log = logging.getLogger("wireframe.scheduler")


class Maintenance:
    """One chore per method, run by `run` at its own pace (at most every second).

    Contract: `age` raises the priority of jobs that waited longer than `aging_interval`
    (every half interval); `prune` deletes ended jobs older than `keep_history` (at most every
    minute); `fire_schedules` creates the due occurrences of this worker's domains' schedules,
    once across all processes (the store applies each schedule's overlap policy), publishes
    `JobSubmitted` for each occurrence created and `ScheduleSkipped` for each firing skipped,
    and tells `fired()` when it created any; `announce` records the worker (`presence()`)
    in the store when it starts and every `presence_every` seconds after, and `leave`
    deletes its row.
    """

    def __init__(
        self,
        hub: Hub,
        *,
        domains: tuple[str, ...],
        aging_interval: float | None,
        keep_history: float | None,
        poll_interval: float,
        clock: Clock,
        fired: Callable[[], None],
        presence: Callable[[], WorkerInfo] | None = None,
        presence_every: float = 15.0,
    ) -> None:
        self._hub = hub
        self.store = hub.store
        self.domains = domains
        self.aging_interval = aging_interval
        self.keep_history = keep_history
        self.poll_interval = poll_interval
        self.clock = clock
        self._fired = fired
        self._aged = self._pruned = clock.time()
        self._presence = presence
        self.presence_every = presence_every
        self._announced: float | None = None
        self._next_fire: float | None = None
        """When a schedule fired by the last pass is due again (Unix time), if any."""

    async def run(self) -> None:
        """Do each chore when it is due, until cancelled."""
        while True:
            await self.announce()
            await self.age()
            await self.prune()
            if await self.fire_schedules():
                self._fired()
            await anyio.sleep(self._pause())

    def _pause(self) -> float:
        """Seconds until the next chores: the poll interval (1 s at most), or less when a
        schedule this worker fired is due again sooner (so `Every(0.1)` fires every 0.1 s)."""
        pause = min(self.poll_interval, 1.0)
        if self._next_fire is not None:
            pause = min(pause, max(0.0, self._next_fire - self.clock.time()))
        return pause

    async def announce(self) -> None:
        """Record this worker in the store, or refresh its row, when due."""
        if self._presence is None:
            return
        now = self.clock.monotonic()
        if self._announced is not None and now - self._announced < self.presence_every:
            return
        starting = self._announced is None
        self._announced = now
        await self.store.put_worker(self._presence(), starting=starting)

    async def leave(self) -> None:
        """Delete this worker's row (a clean stop): it no longer counts as live."""
        if self._presence is not None and self._announced is not None:
            self._announced = None
            await self.store.remove_worker(self._presence().worker_id)

    async def age(self) -> None:
        """Boost jobs that waited too long, if aging is on and due."""
        now = self.clock.time()
        if self.aging_interval is None or now - self._aged < self.aging_interval / 2:
            return
        self._aged = now
        await self.store.age(self.aging_interval, AGING_STEP, PRIORITY_MAX)

    async def prune(self) -> None:
        """Delete old ended jobs, if history is bounded and pruning is due."""
        now = self.clock.time()
        if self.keep_history is None or now - self._pruned < min(60.0, self.keep_history):
            return
        self._pruned = now
        await self.store.prune(now - self.keep_history)

    async def fire_schedules(self) -> int:
        """Fire the due schedules of this worker's domains; return how many created a job."""
        fired = 0
        self._next_fire = None
        for schedule in await self.store.due_schedules(self.domains):
            assert schedule.next_run_at is not None
            recurrence = recurrence_from_json(json.loads(schedule.spec))
            following = recurrence.next_run(max(self.clock.time(), schedule.next_run_at))
            with self._hub.holding_transitions():
                result = await self.store.fire_schedule(
                    schedule.id, schedule.next_run_at, following
                )
                if result is not None:
                    self._report(schedule, result)
            if result is not None and following is not None:
                self._next_fire = min(following, self._next_fire or following)
            if result is not None and result.job_id is not None:
                fired += 1
        return fired

    def _report(self, schedule: ScheduleRecord, result: Fired) -> None:
        """Log and publish what firing `schedule` did."""
        assert schedule.next_run_at is not None
        if result.job_id is not None:
            if result.active_job_id is not None:
                log.debug(
                    "schedule %d (%s): the occurrence due at %.3f, job %d, waits for job %d "
                    "to end (overlap=%s)",
                    schedule.id,
                    schedule.type,
                    schedule.next_run_at,
                    result.job_id,
                    result.active_job_id,
                    schedule.overlap,
                )
            self._hub.publish(JobSubmitted(job_id=result.job_id, job_type=schedule.type))
            return
        log.debug(
            "schedule %d (%s): skipped the firing due at %.3f: job %s has not ended (overlap=%s)",
            schedule.id,
            schedule.type,
            schedule.next_run_at,
            result.active_job_id,
            schedule.overlap,
        )
        self._hub.publish(
            ScheduleSkipped(
                schedule_id=schedule.id,
                job_type=schedule.type,
                run_at=schedule.next_run_at,
                active_job_id=result.active_job_id,
            )
        )
