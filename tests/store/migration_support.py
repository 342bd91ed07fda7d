"""Databases left at an older schema version, for the tests of later migrations."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wireframe.store.sql.schema import MIGRATIONS, PG_MIGRATIONS


def statements(migration: str) -> Iterator[str]:
    """A migration's statements, split the way `schema.migrate` splits them."""
    return (s for s in migration.split(";") if s.strip())


def sqlite_at_version(path: Path, version: int) -> sqlite3.Connection:
    """A connection to a new SQLite file migrated up to `version`, in an open transaction.

    The caller adds its rows, then commits and closes.
    """
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, migration in enumerate(MIGRATIONS[:version], start=1):
        for statement in statements(migration):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    return conn


def pg_at_version(conn: Any, schema: str, version: int) -> None:
    """Create `schema` on a psycopg connection, migrated up to `version` (caller commits)."""
    conn.execute(f"CREATE SCHEMA {schema}")
    conn.execute(f"SET LOCAL search_path TO {schema}")
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for number, migration in enumerate(PG_MIGRATIONS[:version], start=1):
        for statement in statements(migration):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))


def read_sqlite(path: Path, sql: str) -> tuple[list[int], list[Any]]:
    """The versions recorded in a SQLite file, and the rows `sql` reads from it."""
    conn = sqlite3.connect(path)
    try:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        return versions, conn.execute(sql).fetchall()
    finally:
        conn.close()


def read_pg(dsn: str, schema: str, sql: str) -> tuple[list[int], list[Any]]:
    """The versions recorded in a PostgreSQL schema, and the rows `sql` reads (search_path set)."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(f"SET LOCAL search_path TO {schema}")
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        return versions, conn.execute(sql).fetchall()
