"""Why a pending job waits for its concurrency key, worked out when an operator looks.

The claim writes nothing on a job it steps over because its key is at its cap (that would make
every claim write), so `wireframe jobs` and `wireframe job` ask the store how many jobs of each
shown key run and put the answer in front of the job's reason ("key acct-7 at its cap of 2
running"); `wireframe top` shows the store's count of jobs held by caps per job type.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from wireframe.store import JobRecord, JobState, Store
from wireframe.store.flowkeys import KeyStats, cap_reason

__all__ = ["held_by_caps", "with_key_waits"]


async def with_key_waits(store: Store, jobs: Sequence[JobRecord]) -> list[JobRecord]:
    """`jobs`, those held by their key's cap with the cap as (the start of) their reason."""
    capped = [j for j in jobs if j.state is JobState.PENDING and j.key_cap is not None]
    keys = sorted({j.flow_key for j in capped if j.flow_key is not None})
    if not keys:
        return list(jobs)
    running = await store.key_running(keys)
    out: list[JobRecord] = []
    for job in jobs:
        cap, key = job.key_cap, job.flow_key
        if job in capped and key is not None and cap is not None and running.get(key, 0) >= cap:
            why = cap_reason(key, cap)
            job = attrs.evolve(job, reason=f"{why}; {job.reason}" if job.reason else why)
        out.append(job)
    return out


def held_by_caps(stats: Sequence[KeyStats]) -> str | None:
    """One line for `wireframe top`: the jobs held by key caps per type, or None if none is."""
    held = [s for s in stats if s.waiting_on_cap]
    if not held:
        return None
    parts = ", ".join(
        f"{s.type} {s.waiting_on_cap} (busiest key runs {s.max_running_per_key})" for s in held
    )
    return f"waiting on key caps: {parts}"
