"""Concurrency keys in the memory store: turn stamps, running counts per key, admission.

The memory twin of `wireframe.store.sql.keys`. The book of turns and running counts
(`KeyBook`) and a claim's `Admission` are in `keybook.py` (re-exported here), which the table
holds without importing this module; here are the reports over the table.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from wireframe.store.flowkeys import KeyStats
from wireframe.store.memory.keybook import Admission, KeyBook
from wireframe.store.memory.rows import PENDING, RUNNING

if TYPE_CHECKING:
    from wireframe.store.memory.table import Table

__all__ = ["Admission", "KeyBook", "key_stats", "running_counts"]


def running_counts(tb: Table, keys: list[str]) -> dict[str, int]:
    """How many jobs of each key run (keys with none are left out)."""
    running = tb.flow.running
    return {key: running[key] for key in keys if key in running}


def key_stats(tb: Table) -> list[KeyStats]:
    """Per (domain, type): pending jobs held by their key's cap, the most jobs one key runs."""
    running = tb.flow.running
    tops: dict[tuple[str, str], Counter[str]] = {}
    for job in tb.active[RUNNING].values():
        if job.flow_key is not None:
            tops.setdefault((job.domain, job.type), Counter())[job.flow_key] += 1
    waiting: Counter[tuple[str, str]] = Counter()
    for job in tb.active[PENDING].values():
        cap = job.key_cap
        if cap is not None and job.flow_key is not None and running.get(job.flow_key, 0) >= cap:
            waiting[(job.domain, job.type)] += 1
    pairs = sorted(set(tops) | set(waiting))
    return [
        KeyStats(d, t, waiting[(d, t)], max(tops[(d, t)].values()) if (d, t) in tops else 0)
        for d, t in pairs
    ]


def uncapped_top(tb: Table, lanes: set[int]) -> int | None:
    """The highest base priority among pending jobs of these lanes (by `id`) that their key's
    cap lets start: a scan of the pending jobs, for preemption checks while keys run."""
    running = tb.flow.running
    top: int | None = None
    for job in tb.active[PENDING].values():
        if id(job.lane) not in lanes or (top is not None and job.base_priority <= top):
            continue
        cap = job.key_cap
        if cap is not None and job.flow_key is not None and running.get(job.flow_key, 0) >= cap:
            continue
        top = job.base_priority
    return top
