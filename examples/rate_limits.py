"""Rate limits: at most N job starts per period, across every worker, per tenant if you like.

    python examples/rate_limits.py

The ``api`` domain calls a partner API that allows each tenant 10 calls a second, 3 at once
after a quiet spell: ``Rate(10, per=1.0, burst=3)`` with ``rate_key=`` the payload's tenant.
A bulk ``export`` costs 3 tokens. The store keeps the buckets, so any number of worker
processes together keep to the limit; a job the limit holds stays ``pending`` with a reason,
takes no slot, and the worker wakes when its next token is due. Tenant ``acme`` floods the
queue, yet ``globex``'s calls go ahead of acme's backlog: each key has its own bucket.
"""

from __future__ import annotations

import time

import anyio
import attrs

from wireframe import Domain, JobContext, Rate, Scheduler
from wireframe.testing import running

api = Domain("api", rate=Rate(10, per=1.0, burst=3), rate_key=lambda call: call.tenant)


@attrs.frozen
class Call:
    tenant: str
    n: int
    bulk: bool = False


starts: dict[str, list[float]] = {}


@api.job(cost=lambda call: 3 if call.bulk else 1)
async def fetch(job: Call, ctx: JobContext) -> None:
    starts.setdefault(job.tenant, []).append(time.monotonic())


async def main() -> None:
    async with running(Scheduler("memory://", domains=[api], max_concurrency=8)) as scheduler:
        begin = time.monotonic()
        await scheduler.submit_many([Call("acme", i) for i in range(12)])
        bulk = await scheduler.submit(Call("acme", 12, bulk=True))
        last = [await scheduler.submit(Call("globex", i)) for i in range(4)][-1]
        await anyio.sleep(0.1)
        [waiting] = await scheduler.jobs(state="pending", limit=1)
        print(f"job {waiting.id} waits: {waiting.reason}")
        await scheduler.result(last, timeout=10)
        print(f"globex: 4 calls done in {time.monotonic() - begin:.1f} s")
        await scheduler.result(bulk, timeout=10)  # last in acme's queue: never overtaken
    for tenant, times in sorted(starts.items()):
        span = times[-1] - times[0]
        print(f"{tenant}: {len(times)} jobs started over {span:.1f} s (limit 10/s, burst 3)")


if __name__ == "__main__":
    anyio.run(main)
