"""The app of the multi-process rate limit tests (`wireframe worker --app rate_app:scheduler`).

One domain limited to 50 jobs a second (burst 5) across every worker; its handler does nothing,
so only the limit paces the starts.
"""

from __future__ import annotations

import attrs

from wireframe import Domain, JobContext, Rate, Scheduler

paced = Domain("paced", rate=Rate(50, per=1.0, burst=5))


@attrs.frozen
class Tick:
    n: int


@paced.job
async def tick(job: Tick, ctx: JobContext) -> None:
    return None


scheduler = Scheduler("memory://", domains=[paced], max_concurrency=8, poll_interval=1.0)
