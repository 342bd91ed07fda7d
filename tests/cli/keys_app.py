"""The app of the concurrency key tests: `python -m wireframe worker --app keys_app:scheduler`.

`work` jobs are keyed by their payload's `acct` (at most 2 running per account). Each one, while
it runs, keeps a marker file `run-<acct>-<id>` in the directory named in its payload, and writes
`seen-<id>`: how many markers of its account it saw when it started (itself included). A marker
exists only while its job runs, so what a job sees is at most what the store lets run at once.
A job with `"hang": true` hangs on its first attempt (the test SIGKILLs its worker).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio

from wireframe import Domain, JobContext, Scheduler

CAP = 2
accounts = Domain("keys", concurrency_key=lambda job: job["acct"], max_per_key=CAP)


@accounts.job
async def work(job: dict[str, Any], ctx: JobContext) -> int:
    where = Path(job["dir"])
    marker = where / f"run-{job['acct']}-{ctx.job.id}"
    marker.write_text(str(os.getpid()))
    seen = len(list(where.glob(f"run-{job['acct']}-*")))
    (where / f"seen-{ctx.job.id}-{ctx.job.attempt}").write_text(str(seen))
    if job.get("hang") and ctx.job.attempt == 1:
        await anyio.sleep_forever()
    await anyio.sleep(job.get("hold", 0.02))  # the job's work: other jobs overlap it
    marker.unlink()
    return seen


scheduler = Scheduler(
    os.environ.get("WIREFRAME_STORE", "memory://"),
    domains=[accounts],
    claim_ttl=1.0,
    poll_interval=0.05,
    max_concurrency=8,
)
