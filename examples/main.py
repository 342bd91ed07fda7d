"""The wireframe demo service: every task kind, with the job scheduler embedded as one task.

    python examples/main.py          # runs until Ctrl-C (SIGINT/SIGTERM; press twice to force)
    python examples/main.py --once   # runs one batch of jobs, then stops by itself (a few s)

It shows every task kind: a migration (unconstrained oneshot) that satisfies a precondition
("database ready"), a long-running ticker that starts only after the precondition, a health task
that starts at once and reports ``service.status()``, a shutdown hook, and a database connection
the wiring opens with ``ctx.provide_managed`` and the service closes after the hook.

Beside them runs a ``Scheduler`` on the embedded SQLite store (one task among the others), and a
oneshot ``batch`` task submits 20 jobs to it: image resizes with mixed priorities, two that fail
once and are retried, and an album job that spawns child jobs and then finalizes. A rich progress
bar follows the batch through ``scheduler.subscribe()`` events. With ``--once`` the database is a
fresh temporary file and the service stops when the batch is done; otherwise the jobs live in
``./wireframe-demo.db`` (or ``--db PATH``) and the service keeps running.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import attrs
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from wireframe.scheduler import (
    Domain,
    EventsLagged,
    JobCompleted,
    JobContext,
    JobFailedEvent,
    JobProgress,
    JobRetrying,
    JobStarted,
    JobState,
    JobWaiting,
    Priority,
    Retry,
    Scheduler,
    ShutdownMode,
)
from wireframe.scheduler.events import Subscription
from wireframe.service import (
    OneshotTask,
    Service,
    ServiceContext,
    ShutdownHook,
    StopReceiver,
    Task,
    TaskKind,
    WiringLayer,
)

log = logging.getLogger("demo")


class Database:
    """A stand-in for a real database: ready once the migration has run."""

    def __init__(self) -> None:
        self.schema_version = 0

    @property
    def ready(self) -> bool:
        return self.schema_version > 0


@contextlib.asynccontextmanager
async def connect() -> AsyncIterator[Database]:
    """Open a (pretend) connection; the service closes it after the shutdown hooks."""
    db = Database()
    log.info("database: connected")
    try:
        yield db
    finally:
        log.info("database: connection closed")


class DatabaseLayer(WiringLayer):
    """Provides the Database, its migration and the precondition that waits for it."""

    name = "database"

    async def wire(self, ctx: ServiceContext) -> None:
        db = await ctx.provide_managed(connect(), close_timeout=5.0)

        async def migrate(stop: StopReceiver) -> None:
            await anyio.sleep(0.3)  # pretend to apply the schema
            db.schema_version = 1
            log.info("migrate: schema at version %d", db.schema_version)

        async def database_ready(stop: StopReceiver) -> None:
            while not db.ready and not await stop.wait(0.05):
                pass
            log.info("precondition: database ready")

        ctx.add_task(Task.from_fn("migrate", migrate, kind=TaskKind.UNCONSTRAINED_ONESHOT))
        ctx.add_task(Task.from_fn("database-ready", database_ready, kind=TaskKind.PRECONDITION))


# -- jobs ------------------------------------------------------------------------------------

media = Domain("media", max_concurrency=4)


@attrs.frozen
class Resize:
    path: str
    width: int
    flaky: bool = False  # fail the first attempt, as a busy disk would


@attrs.frozen
class Album:
    name: str
    photos: tuple[str, ...]


@media.job(
    retry=Retry.exponential(attempts=3, base=0.2, cap=1.0),
    key=lambda r: f"{r.path}:{r.width}",  # the same resize is never queued twice
    timeout=30,
)
async def resize(job: Resize, ctx: JobContext) -> dict[str, object]:
    if job.flaky and ctx.job.attempt == 1:
        raise OSError(f"{job.path}: disk busy, try again")
    for step, what in enumerate(("decode", "scale", "encode"), start=1):
        ctx.progress(step / 3, what)
        await anyio.sleep(0.08)
    return {"path": job.path, "width": job.width}


@media.job
async def album(job: Album, ctx: JobContext) -> int:
    """Spawn one thumbnail job per photo; `done` runs once they have all ended."""
    for n, photo in enumerate(job.photos, start=1):
        await ctx.spawn(Resize(photo, 128), priority=Priority.HIGH)
        ctx.progress(n / len(job.photos), f"spawned {n}")
    return len(job.photos)


@album.finalize
async def done(job: Album, ctx: JobContext) -> str:
    children = await ctx.children()
    ok = sum(child.state is JobState.COMPLETED for child in children)
    return f"album {job.name!r}: {ok}/{len(children)} thumbnails"


def batch() -> list[tuple[Resize | Album, Priority]]:
    """20 submissions: resizes at three priorities (two of them flaky) and one album."""
    jobs: list[tuple[Resize | Album, Priority]] = []
    for i in range(19):
        priority = (Priority.LOW, Priority.NORMAL, Priority.HIGH)[i % 3]
        jobs.append((Resize(f"/photos/img{i:02d}.jpg", 800, flaky=i in (4, 11)), priority))
    photos = ("/photos/a.jpg", "/photos/b.jpg", "/photos/c.jpg")
    jobs.append((Album("holiday", photos), Priority.NORMAL))
    return jobs


class BatchDemo(OneshotTask):
    """Submit a batch of jobs and follow it with a rich progress bar until every job has ended."""

    id = "batch"

    def __init__(self, service: Service, scheduler: Scheduler, *, once: bool) -> None:
        self.service = service
        self.scheduler = scheduler
        self.once = once

    async def run(self, stop: StopReceiver) -> None:
        scheduler = self.scheduler
        started = time.monotonic()
        async with scheduler.subscribe() as events:  # subscribe first: no event is missed
            ids = set()
            for payload, priority in batch():
                ids.add((await scheduler.submit(payload, priority=priority)).id)
            log.info("batch: submitted %d jobs", len(ids))
            with Progress(
                TextColumn("{task.description:<32}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
            ) as progress:
                async with anyio.create_task_group() as tg:

                    async def stop_early() -> None:
                        await stop.wait()
                        tg.cancel_scope.cancel()

                    tg.start_soon(stop_early)
                    await self.follow(events, ids, progress)
                    tg.cancel_scope.cancel()
        if stop.stopped:
            return
        jobs = [await scheduler.get(job_id) for job_id in sorted(ids)]
        states = sorted({job.state.value for job in jobs if job is not None})
        retried = sum(job.attempt > 1 for job in jobs if job is not None)
        log.info(
            "batch: %d jobs ended in %.1f s (%s; %d retried)",
            len(jobs),
            time.monotonic() - started,
            ", ".join(states),
            retried,
        )
        albums = await scheduler.jobs(type="media::album", state="completed", limit=1)
        if albums:
            log.info("batch: %s", await scheduler.result(albums[0].id))
        if self.once:
            self.service.stop("--once: demo finished")

    async def follow(self, events: Subscription, ids: set[int], progress: Progress) -> None:
        """Feed the bars from events; every 0.5 s, recount the batch from the store."""
        scheduler = self.scheduler
        overall = progress.add_task("[bold]batch", total=len(ids))
        bars: dict[int, TaskID] = {}
        unfinished = set(ids)
        while unfinished:
            with anyio.move_on_after(0.5):
                event = await events.receive()
                job_id = getattr(event, "job_id", None)
                if isinstance(event, JobStarted) and job_id is not None:
                    label = f"#{job_id} {event.job_type.split('::')[1]}"
                    if event.attempt > 1:
                        label += f" (attempt {event.attempt})"
                    bars[job_id] = progress.add_task(label, total=1.0)
                elif isinstance(event, JobProgress) and job_id in bars:
                    progress.update(bars[job_id], completed=event.fraction)
                elif isinstance(event, JobRetrying):
                    log.info("job %d will retry in %.2f s", event.job_id, event.delay)
                if isinstance(event, JobCompleted | JobFailedEvent | JobWaiting) and job_id in bars:
                    progress.remove_task(bars.pop(job_id))
                if not isinstance(event, JobCompleted | JobFailedEvent | EventsLagged):
                    continue
            # Something ended (or events were dropped, or time passed): ask the store.
            for job_id in list(unfinished):
                job = await scheduler.get(job_id)
                if job is None or job.terminal:
                    unfinished.discard(job_id)
            progress.update(overall, completed=len(ids) - len(unfinished))
        for bar in bars.values():  # jobs whose last event we did not wait for
            progress.remove_task(bar)


def build_service(once: bool = False, db: Path | None = None) -> Service:
    """Assemble the demo service; with ``once`` it stops itself when its batch of jobs is done."""
    service = Service("demo", graceful_timeout=5.0)
    service.add_layer(DatabaseLayer())

    temp_dir: Path | None = None
    if db is None and once:  # a fresh store, so that every run starts clean
        temp_dir = Path(tempfile.mkdtemp(prefix="wireframe-demo-"))
        db = temp_dir / "jobs.db"
    elif db is None:
        db = Path("wireframe-demo.db")  # kept: jobs left over from a stopped run resume
    scheduler = Scheduler(
        f"sqlite:///{db}",
        domains=[media],
        max_concurrency=8,
        shutdown=ShutdownMode.graceful(2.0),  # then unfinished jobs go back to pending
    )
    service.add_task(scheduler)
    service.add_task(BatchDemo(service, scheduler, once=once))

    @service.task()
    async def ticker(stop: StopReceiver) -> None:
        n = 0
        while not await stop.wait(timeout=0.5):
            n += 1
            print(f"tick {n}", flush=True)

    @service.task(id="health", kind=TaskKind.UNCONSTRAINED)
    async def health(stop: StopReceiver) -> None:
        while not await stop.wait(timeout=1.0):
            status = service.status()
            running = sum(t.state.value == "running" for t in status.tasks)
            log.info(
                "health: phase=%s ready=%s running=%d", status.phase.value, status.ready, running
            )

    async def flush() -> None:
        print("shutdown hook: flushed", flush=True)

    service.add_shutdown_hook(ShutdownHook("flush", flush, timeout=2.0))
    if temp_dir is not None:

        async def remove_temp_db() -> None:
            shutil.rmtree(temp_dir, ignore_errors=True)

        service.add_shutdown_hook(ShutdownHook("remove-temp-db", remove_temp_db))
    return service


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the wireframe demo service.")
    parser.add_argument("--once", action="store_true", help="stop once the batch of jobs is done")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("--db", type=Path, help="SQLite file of the job store")
    args = parser.parse_args()
    raise SystemExit(build_service(args.once, args.db).run_sync(backend=args.backend))
