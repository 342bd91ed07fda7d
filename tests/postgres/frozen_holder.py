"""A process that freezes inside a store transaction holding row locks (test_frozen_worker).

    python frozen_holder.py STORE_URL

It claims every pending job of domain `t` (a 2 s lease), then stops itself with SIGSTOP in the
middle of a heartbeat of those jobs: the transaction holds their rows locked. Once continued
(SIGCONT), it completes them and prints, as JSON lines, what it claimed and what the store
answered.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from typing import Any

import anyio

from wireframe.store import Beat, ClaimRequest, Complete, PostgresStore
from wireframe.store.sql import finish as finish_sql
from wireframe.store.sql.tx import Tx


def freeze_once(claimed: list[int]) -> None:
    """Make the next heartbeat stop this process once its rows are locked."""
    real = finish_sql.heartbeat
    frozen: list[bool] = []

    def heartbeat(tx: Tx, now: float, *args: Any) -> Any:
        status = real(tx, now, *args)  # the jobs' rows are locked until this transaction ends
        if not frozen:  # the store runs it again once it finds its session ended
            frozen.append(True)
            print(json.dumps({"claimed": claimed}), flush=True)
            # Sent to this thread, the stop takes it at once: sent to the process, it may be
            # delivered through another thread while this one goes on and commits.
            signal.pthread_kill(threading.get_ident(), signal.SIGSTOP)
        return status

    finish_sql.heartbeat = heartbeat


async def main(url: str) -> None:
    store = PostgresStore(url)
    await store.open()
    try:
        jobs = await store.claim(ClaimRequest("frozen", 100, 2.0, ("t",), housekeep=False))
        freeze_once([j.id for j in jobs])
        beats = await store.heartbeat([Beat(j.lease) for j in jobs], 2.0)
        print(json.dumps({"beats": sorted(str(s) for s in beats.values())}), flush=True)
        applied = await store.finish([Complete(j.lease, '"frozen"') for j in jobs])
        print(json.dumps({"applied": applied}), flush=True)
    finally:
        await store.close()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
