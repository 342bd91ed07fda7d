"""The databases the transaction tests run on: a SQLite file or a PostgreSQL schema."""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))


class Db:
    """One database shared by the store and the application: how to reach it either way."""

    kind: str
    url: str
    table: str
    """The application's table (`id` unique, `note` text)."""

    async def connect(self) -> Any:
        """A new application connection, with no transaction open."""
        raise NotImplementedError

    async def begin(self, conn: Any) -> None:
        """Begin a transaction on the application's connection."""
        raise NotImplementedError

    async def write(self, conn: Any, row_id: int, note: str = "") -> None:
        """Insert one application row through `conn` (in its transaction)."""
        raise NotImplementedError

    async def commit(self, conn: Any) -> None:
        """Commit the application's transaction."""
        raise NotImplementedError

    async def rollback(self, conn: Any) -> None:
        """Roll the application's transaction back."""
        raise NotImplementedError

    async def close(self, conn: Any) -> None:
        """Close an application connection."""
        raise NotImplementedError

    def jobs_seen_outside(self) -> int:
        """How many jobs another connection sees now."""
        raise NotImplementedError

    def store_sql(self, sql: str, params: tuple[object, ...]) -> None:
        """Run one statement (`?` placeholders) on the store's tables and commit it."""
        raise NotImplementedError

    def rows(self) -> list[tuple[int, str]]:
        """The application's committed rows, by id (read on a fresh connection)."""
        raise NotImplementedError


class SqliteDb(Db):
    kind = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self.table = "orders"
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, note TEXT)")

    async def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, isolation_level=None, timeout=30)

    async def begin(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")

    async def write(self, conn: sqlite3.Connection, row_id: int, note: str = "") -> None:
        conn.execute("INSERT INTO orders (id, note) VALUES (?, ?)", (row_id, note))

    async def commit(self, conn: sqlite3.Connection) -> None:
        conn.execute("COMMIT")

    async def rollback(self, conn: sqlite3.Connection) -> None:
        conn.execute("ROLLBACK")

    async def close(self, conn: sqlite3.Connection) -> None:
        conn.close()

    def store_sql(self, sql: str, params: tuple[object, ...]) -> None:
        with sqlite3.connect(self.path) as conn:
            conn.execute(sql, params)

    def jobs_seen_outside(self) -> int:
        """How many jobs another connection sees now."""
        conn = sqlite3.connect(self.path)
        try:
            return int(conn.execute("SELECT count(*) FROM jobs").fetchone()[0])
        finally:
            conn.close()

    def rows(self) -> list[tuple[int, str]]:
        conn = sqlite3.connect(self.path)
        try:
            return [tuple(r) for r in conn.execute("SELECT id, note FROM orders ORDER BY id")]
        finally:
            conn.close()


class PgDb(Db):
    kind = "postgres"

    def __init__(self, dsn: str, schema: str) -> None:
        import psycopg

        self.dsn = dsn
        self.schema = schema
        self.url = f"{dsn}?schema={schema}"
        self.table = f"{schema}.orders"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
            conn.execute(f"CREATE TABLE {self.table} (id BIGINT PRIMARY KEY, note TEXT)")

    async def connect(self) -> Any:
        import psycopg

        return await psycopg.AsyncConnection.connect(self.dsn)

    async def begin(self, conn: Any) -> None:
        await conn.execute("BEGIN")

    async def write(self, conn: Any, row_id: int, note: str = "") -> None:
        await conn.execute(f"INSERT INTO {self.table} (id, note) VALUES (%s, %s)", (row_id, note))

    async def commit(self, conn: Any) -> None:
        await conn.commit()

    async def rollback(self, conn: Any) -> None:
        await conn.rollback()

    async def close(self, conn: Any) -> None:
        await conn.close()

    def store_sql(self, sql: str, params: tuple[object, ...]) -> None:
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            conn.execute(f"SET search_path TO {self.schema}")
            conn.execute(sql.replace("?", "%s"), params)

    def rows(self) -> list[tuple[int, str]]:
        import psycopg

        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(f"SELECT id, note FROM {self.table} ORDER BY id").fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]
