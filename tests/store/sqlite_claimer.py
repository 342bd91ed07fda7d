"""A worker process for the multi-process SQLite test: claim and complete until the queue is dry.

Usage: python sqlite_claimer.py DB_PATH NAME LOG_PATH. It prints "ready", waits for a line on
stdin (so every process starts together), then appends "job_id claim_seq attempt" for each claim
to LOG_PATH.
"""

from __future__ import annotations

import sys

import anyio

from wireframe.store import ClaimRequest, Complete, SqliteStore


async def main(db: str, name: str, log_path: str) -> None:
    """Claim in small batches and complete each job, logging every claim."""
    store = SqliteStore(db)
    await store.open()
    print("ready", flush=True)
    sys.stdin.readline()
    request = ClaimRequest(worker_id=name, limit=8, lease_ttl=120.0, domains=("d",))
    with open(log_path, "w") as log:
        while True:
            jobs = await store.claim(request)
            if not jobs:
                break
            log.writelines(f"{j.id} {j.claim_seq} {j.attempt}\n" for j in jobs)
            applied = await store.finish([Complete(j.lease, f'"{name}"') for j in jobs])
            assert all(applied), applied
    await store.close()


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:4])
