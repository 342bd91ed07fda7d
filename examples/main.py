"""The wireframe demo service.

    python examples/main.py          # runs until Ctrl-C (SIGINT/SIGTERM; press twice to force)
    python examples/main.py --once   # stops by itself after about 3 seconds

It shows every task kind: a migration (unconstrained oneshot) that satisfies a precondition
("database ready"), a long-running ticker that starts only after the precondition, a health task
that starts at once and reports ``service.status()``, and a shutdown hook.
"""

from __future__ import annotations

import argparse
import logging

import anyio

from wireframe.service import (
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


class DatabaseLayer(WiringLayer):
    """Provides the Database, its migration and the precondition that waits for it."""

    name = "database"

    async def wire(self, ctx: ServiceContext) -> None:
        db = Database()
        ctx.provide(db)

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


def build_service(once: bool) -> Service:
    """Assemble the demo service; with ``once`` it stops itself after about 3 seconds."""
    service = Service("demo", graceful_timeout=5.0)
    service.add_layer(DatabaseLayer())

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

    if once:

        @service.task(id="stop-after-3s", kind=TaskKind.UNCONSTRAINED_ONESHOT)
        async def stop_after(stop: StopReceiver) -> None:
            if not await stop.wait(timeout=3.0):
                service.stop("--once: demo finished")

    async def flush() -> None:
        print("shutdown hook: flushed", flush=True)

    service.add_shutdown_hook(ShutdownHook("flush", flush, timeout=2.0))
    return service


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the wireframe demo service.")
    parser.add_argument("--once", action="store_true", help="stop by itself after ~3 seconds")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    args = parser.parse_args()
    raise SystemExit(build_service(args.once).run_sync(backend=args.backend))
