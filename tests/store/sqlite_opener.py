"""A process for the concurrent-open SQLite test: open a store on each path it is given and submit.

Usage: python sqlite_opener.py NAME BACKEND. It prints "ready", then for every line (a path to a
database that may not exist yet) opens a `SqliteStore` on it, submits one job whose payload names
this process, closes the store and prints "ok <job id>", or "error <type>: <message>" (and goes on).
An empty line or the end of stdin ends it.
"""

from __future__ import annotations

import json
import sys

import anyio

from wireframe.store import NewJob, SqliteStore, Submitted


async def open_and_submit(path: str, name: str) -> str:
    """Open a store on `path`, submit one job, close it; the line to report."""
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
        return f"error {type(exc).__module__}.{type(exc).__name__}: {exc}"
    if not isinstance(result, Submitted):
        return f"error not submitted: {result!r}"
    return f"ok {result.id}"


async def main(name: str) -> None:
    """Serve one path per line until stdin ends."""
    print("ready", flush=True)
    while path := sys.stdin.readline().strip():
        print(await open_and_submit(path, name), flush=True)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], backend=sys.argv[2])
