"""The memory store: the transition engine of `wireframe.store.sql`, in plain Python objects.

Every operation runs synchronously on the event loop after one checkpoint, so it is atomic; it
validates before it mutates. Jobs live in a `Table` (`table.py`) with the indexes the hot paths
need (pending jobs by priority, due jobs, leases, ttl expiry, dedup keys, dependents, children).
"""

from __future__ import annotations

from wireframe.store.memory.store import MemoryStore

__all__ = ["MemoryStore"]
