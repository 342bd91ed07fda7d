"""A deferred pipeline: wait for a file to appear with `defer_until`, then process it.

    python examples/deferred_pipeline.py

While the job waits it gives its concurrency slot back (the scheduler here has only one), so
other jobs keep running; when the file appears it takes a slot again and carries on in the same
invocation. The snapshot shows the waiting job as deferred.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
import attrs

from wireframe import Domain, JobContext, OneshotTask, Scheduler, Service, StopReceiver

pipeline = Domain("pipeline")


@attrs.frozen
class Ingest:
    path: str


@attrs.frozen
class Ping:
    n: int


@pipeline.job
async def ingest(job: Ingest, ctx: JobContext) -> int:
    path = Path(job.path)
    ctx.progress(0.0, f"waiting for {path.name}")
    await ctx.defer_until(path.exists, poll_interval=0.05)
    lines = (await anyio.Path(path).read_text()).splitlines()
    ctx.progress(1.0, "processed")
    return len(lines)


@pipeline.job
async def ping(job: Ping, ctx: JobContext) -> int:
    return job.n


def build(workdir: Path) -> Service:
    scheduler = Scheduler("memory://", domains=[pipeline], max_concurrency=1)
    service = Service(name="pipeline")
    service.add_task(scheduler)

    class Driver(OneshotTask):
        id = "driver"

        async def run(self, stop: StopReceiver) -> None:
            target = workdir / "upload.csv"
            waiting = await scheduler.submit(Ingest(str(target)))
            snap = await scheduler.snapshot()
            while snap.deferred == 0:
                await anyio.sleep(0.02)
                snap = await scheduler.snapshot()
            print(f"{snap.deferred} job deferred; the only slot is free for others")
            pings = await scheduler.submit_many([Ping(i) for i in range(3)])
            for out in pings:
                await scheduler.result(out.id, timeout=10)
            print("3 other jobs ran while the ingest job waited")
            target.write_text("a,b\n1,2\n3,4\n")
            print("ingested lines:", await scheduler.result(waiting.id, timeout=10))
            service.stop("demo finished")

    service.add_task(Driver())
    return service


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        raise SystemExit(build(Path(tmp)).run_sync())
