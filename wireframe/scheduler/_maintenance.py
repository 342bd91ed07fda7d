"""A worker's chores besides running jobs: aging waiting jobs, pruning history, firing schedules,
keeping its row in the store's workers table."""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio

from wireframe.scheduler.clock import Clock
from wireframe.scheduler.priority import AGING_STEP, PRIORITY_MAX
from wireframe.scheduler.recurring import recurrence_from_json
from wireframe.store import Store, WorkerInfo


class Maintenance:
    """One chore per method, run by `run` at its own pace (at most every second).

    Contract: `age` raises the priority of jobs that waited longer than `aging_interval`
    (every half interval); `prune` deletes ended jobs older than `keep_history` (at most every
    minute); `fire_schedules` creates the due occurrences of this worker's domains' schedules,
    once across all processes, and tells `fired()` when it created any; `announce` records the
    worker (`presence()`) in the store when it starts and every `presence_every` seconds after,
    and `leave` deletes its row.
    """

    def __init__(
        self,
        store: Store,
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
        self.store = store
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

    async def run(self) -> None:
        """Do each chore when it is due, until cancelled."""
        while True:
            await self.announce()
            await self.age()
            await self.prune()
            if await self.fire_schedules():
                self._fired()
            await anyio.sleep(min(self.poll_interval, 1.0))

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
        for schedule in await self.store.due_schedules(self.domains):
            assert schedule.next_run_at is not None
            recurrence = recurrence_from_json(json.loads(schedule.spec))
            following = recurrence.next_run(max(self.clock.time(), schedule.next_run_at))
            result = await self.store.fire_schedule(schedule.id, schedule.next_run_at, following)
            if result is not None and result.job_id is not None:
                fired += 1
        return fired
