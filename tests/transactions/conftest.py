"""Fixtures of the transaction tests: the same test on a SQLite file (asyncio and trio) and on a
PostgreSQL schema of its own (asyncio: psycopg's async API), with the application's table."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))

from txn_support import Db, PgDb, SqliteDb

from pg_support import drop_schema, new_schema_name, require_pg


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """PostgreSQL runs under asyncio only (psycopg's async connections need it)."""
    for item in list(items):
        params = getattr(getattr(item, "callspec", None), "params", {})
        postgres = params.get("db") == "postgres" or "pg_db" in getattr(item, "fixturenames", ())
        if postgres and params.get("anyio_backend") == "trio":
            items.remove(item)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path, anyio_backend: str) -> Iterator[Db]:
    """The shared database, on SQLite (asyncio and trio) and PostgreSQL (asyncio)."""
    if request.param == "sqlite":
        yield SqliteDb(tmp_path / "app.db")
        return
    schema = new_schema_name("wftx")
    pg = PgDb(require_pg(), schema)
    try:
        yield pg
    finally:
        drop_schema(schema)


@pytest.fixture
def pg_db(anyio_backend: str) -> Iterator[PgDb]:
    """The shared database on PostgreSQL alone (asyncio)."""
    if anyio_backend != "asyncio":
        pytest.skip("the PostgreSQL transaction tests run under asyncio")
    schema = new_schema_name("wftx")
    pg = PgDb(require_pg(), schema)
    try:
        yield pg
    finally:
        drop_schema(schema)
