"""A process for the concurrent-open SQLite test: open stores on each path it is given and submit.

Usage: python sqlite_opener.py NAME BACKEND STORES. It prints "ready", then for every line (a path
to a database that may not exist yet) opens STORES `SqliteStore`s on it at once (tasks of this
process), each submitting one job whose payload names it (NAME/0, NAME/1...), and prints one line:
"ok <job id> <job id>..." or the failures, "error <type>: <message>" joined by "; ". An empty line
or the end of stdin ends it.
"""

from __future__ import annotations

import json
import sys

import anyio

from wireframe.store import NewJob, SqliteStore, Submitted


async def open_and_submit(path: str, name: str, replies: list[str]) -> None:
    """Open a store on `path`, submit one job, close it; note "ok <id>" or the error."""
    store = SqliteStore(path)
    try:
        await store.open()
        try:
            [result] = await store.submit(
                [NewJob(type="d::t", domain="d", payload=json.dumps({"by": name}))]
            )
        finally:
            await store.close()
    except Exception as exc:  # reported to the test, which names it
        replies.append(f"error {type(exc).__module__}.{type(exc).__name__}: {exc}")
        return
    ok = isinstance(result, Submitted)
    replies.append(f"ok {result.id}" if ok else f"error not submitted: {result!r}")


async def main(name: str, stores: int) -> None:
    """Serve one path per line until stdin ends."""
    print("ready", flush=True)
    while path := sys.stdin.readline().strip():
        replies: list[str] = []
        async with anyio.create_task_group() as tg:
            for n in range(stores):
                tg.start_soon(open_and_submit, path, f"{name}/{n}", replies)
        errors = [r for r in replies if not r.startswith("ok ")]
        print("; ".join(errors) if errors else "ok " + " ".join(r[3:] for r in replies), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], int(sys.argv[3]), backend=sys.argv[2])
