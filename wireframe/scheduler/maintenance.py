"""A worker's background chores: aging, history pruning and firing recurring schedules."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

import anyio

from wireframe.scheduler.priority import AGING_STEP, PRIORITY_MAX
from wireframe.scheduler.recurring import recurrence_from_json

if TYPE_CHECKING:
    from wireframe.scheduler.worker import Worker


async def housekeeping_loop(worker: Worker) -> None:
    """Age waiting jobs, prune history and fire due schedules, for as long as the worker runs."""
    store = worker.scheduler.store
    last_aging = last_prune = time.time()
    while True:
        now = time.time()
        if worker.aging_interval is not None and now - last_aging >= worker.aging_interval / 2:
            last_aging = now
            await store.age(worker.aging_interval, AGING_STEP, PRIORITY_MAX)
        if worker.keep_history is not None and now - last_prune >= min(60.0, worker.keep_history):
            last_prune = now
            await store.prune(now - worker.keep_history)
        fired = await fire_schedules(worker)
        if fired:
            worker.notify()
        await anyio.sleep(min(worker.poll_interval, 1.0))


async def fire_schedules(worker: Worker) -> int:
    """Fire the due schedules of this worker's domains; return how many created a job."""
    store = worker.scheduler.store
    fired = 0
    for schedule in await store.due_schedules(worker.domain_names):
        assert schedule.next_run_at is not None
        recurrence = recurrence_from_json(json.loads(schedule.spec))
        following = recurrence.next_run(max(time.time(), schedule.next_run_at))
        result = await store.fire_schedule(schedule.id, schedule.next_run_at, following)
        if result is not None and result.job_id is not None:
            fired += 1
    return fired
