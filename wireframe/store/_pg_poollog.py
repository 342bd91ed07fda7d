"""Keeping the PostgreSQL store's connection pools out of the user's logs.

`psycopg_pool` logs its own WARNINGs (`psycopg.pool`: "error connecting in 'wireframe-...'",
"discarding closed connection: ...") while the server is down, from its own threads, so without
the service and task they concern, and once per connection and retry. The store says what
matters once per outage itself (`_pg_calls.Outage`): its pools' records are turned into DEBUG
records, shown only where `psycopg.pool` logs at DEBUG. Pools the application made itself are
left alone.

A record belongs to one of the store's pools when it was logged in one of the pool's threads
(named after the pool), in a thread running a store operation, or names the pool or one of its
connections.
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from wireframe.store._pg_calls import in_call

LOGGER = "psycopg.pool"


class _StorePools(logging.Filter):
    """A filter of the `psycopg.pool` logger that demotes the store's pools' records to DEBUG."""

    def __init__(self) -> None:
        super().__init__()
        self._pools: weakref.WeakSet[Any] = weakref.WeakSet()
        self._lock = threading.Lock()

    def add(self, pool: Any) -> None:
        """Count `pool` as one of the store's."""
        with self._lock:
            self._pools.add(pool)

    def filter(self, record: logging.LogRecord) -> bool:
        """Pass other pools' records; demote ours to DEBUG (dropped unless DEBUG is on)."""
        if record.levelno <= logging.DEBUG or not self._ours(record):
            return True
        if not logging.getLogger(LOGGER).isEnabledFor(logging.DEBUG):
            return False
        record.levelno = logging.DEBUG
        record.levelname = logging.getLevelName(logging.DEBUG)
        return True

    def _ours(self, record: logging.LogRecord) -> bool:
        if in_call():
            return True
        with self._lock:
            pools = list(self._pools)
        names = {pool.name for pool in pools}
        head = (record.threadName or "").rpartition("-")[0]
        if head in names or head.removesuffix("-worker") in names:
            return True  # the pool's threads: `<name>-scheduler` and `<name>-worker-<n>`
        args = record.args if isinstance(record.args, tuple) else ()
        return any(
            (isinstance(arg, str) and arg in names)
            or any(getattr(arg, "_pool", None) is pool for pool in pools)
            for arg in args
        )


_filter = _StorePools()
_installed = threading.Lock()


def quiet(pool: Any) -> None:
    """Keep `pool`'s records (one of the store's pools) out of the logs above DEBUG."""
    _filter.add(pool)
    logger = logging.getLogger(LOGGER)
    with _installed:
        if _filter not in logger.filters:
            logger.addFilter(_filter)
