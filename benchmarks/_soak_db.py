"""The chaos soak's own view of its database: side tables, and the queries behind its report.

One small wrapper over sqlite3 and psycopg (`?` placeholders on both), so the soak reads the
store's tables and its side tables the same way on either store, without the store's code.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from soak_app import SIDE_TABLES

TERMINAL = ("completed", "failed", "cancelled", "expired", "dependency_failed")
NOT_TERMINAL_SQL = "state NOT IN ({})".format(", ".join(f"'{s}'" for s in TERMINAL))


class Db:
    """One connection to the soak's database (the store's tables and the side tables)."""

    def __init__(self, target: str, store_schema: str | None = None) -> None:
        self.target = target
        self.store_schema = store_schema
        self.pg = target.startswith(("postgresql://", "postgres://"))
        self._conn: Any = None

    def _connect(self) -> Any:
        if not self.pg:
            return sqlite3.connect(
                self.target, timeout=60, isolation_level=None, check_same_thread=False
            )
        import psycopg

        conn = psycopg.connect(self.target, autocommit=True, connect_timeout=5)
        conn.execute(f"SET search_path TO public, {self.store_schema}")
        return conn

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; return its rows (reconnecting once if the connection broke)."""
        if self.pg:
            query = query.replace("?", "%s")
        for tries in (1, 2):
            try:
                if self._conn is None:
                    self._conn = self._connect()
                cur = self._conn.execute(query, params)
                return list(cur.fetchall()) if cur.description else []
            except Exception:
                self.close()
                if tries == 2:
                    raise
        raise AssertionError("unreachable")

    def value(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        """The first column of the first row."""
        return self.rows(query, params)[0][0]

    def patient(self, query: str, params: tuple[Any, ...] = (), timeout: float = 30.0) -> Any:
        """`rows`, retried while the database restarts (for at most `timeout` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.rows(query, params)
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def close(self) -> None:
        """Close the connection (the next query opens a new one)."""
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:
                pass
            self._conn = None

    def create_side_tables(self) -> None:
        """`soak_runs` and `soak_effects` (handlers write them; see soak_app)."""
        for ddl in SIDE_TABLES:
            self.rows(ddl)

    # -- during the soak ------------------------------------------------------------------------

    def held_by(self, worker: str) -> int:
        """Jobs the store shows as running under `worker`'s lease."""
        rows = self.patient(
            "SELECT count(*) FROM jobs WHERE state = 'running' AND worker_id = ?", (worker,)
        )
        return int(rows[0][0])

    def not_terminal(self) -> int:
        """Jobs that have not ended yet."""
        return int(self.patient(f"SELECT count(*) FROM jobs WHERE {NOT_TERMINAL_SQL}")[0][0])
