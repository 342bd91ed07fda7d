"""A worker process for the SIGKILL tests: `python txn_crash_app.py STORE_URL TABLE DIR`.

Its handlers write an application row in `ctx.transaction()`. With HANG=1 in the environment,
each stops inside its transaction right after the write (having written a `hanging` marker in
DIR), so the test can kill the process between the write and the commit.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

import anyio

from wireframe import Domain, JobContext, Scheduler, Service

crash = Domain("txcrash")
TABLE = sys.argv[2] if len(sys.argv) > 2 else "orders"
MARKS = Path(sys.argv[3]) if len(sys.argv) > 3 else Path(".")


async def write(conn: Any, row_id: int, note: str) -> None:
    if isinstance(conn, sqlite3.Connection):
        conn.execute(f"INSERT INTO {TABLE} (id, note) VALUES (?, ?)", (row_id, note))
    else:
        await conn.execute(f"INSERT INTO {TABLE} (id, note) VALUES (%s, %s)", (row_id, note))


async def hang_if_asked() -> None:
    if os.environ.get("HANG") == "1":
        (MARKS / "hanging").write_text(str(os.getpid()))
        await anyio.sleep_forever()


@crash.job()
async def record(job: dict[str, Any], ctx: JobContext) -> str:
    async with ctx.transaction() as conn:
        await write(conn, job["id"], "recorded")
        await hang_if_asked()
    return "recorded"


@crash.job()
async def stepped(job: dict[str, Any], ctx: JobContext) -> str:
    async with ctx.transaction(step="one") as conn:
        await write(conn, job["id"], "one")
    async with ctx.transaction(step="two") as conn:
        await write(conn, job["id"] + 1, "two")
        await hang_if_asked()
    return "stepped"


def main() -> int:
    scheduler = Scheduler(sys.argv[1], domains=[crash], claim_ttl=1.0, poll_interval=0.05)
    service = Service(name="txn-crash-worker")
    service.add_task(scheduler)
    return service.run_sync()


if __name__ == "__main__":
    raise SystemExit(main())
