"""A fresh PostgreSQL database per comparison run, dropped afterwards.

Each peer library installs its schema into its own `cmp_<random>` database, so runs never
see each other's rows (nor NOTIFYs, which are per database) and nothing is left behind.
Needs psycopg 3 (installed in the comparison venv, see README.md).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def fresh_database(dsn: str) -> AsyncIterator[str]:
    """Create database `cmp_<random>` on the server of URL `dsn`; yield its URL; drop it."""
    name = f"cmp_{uuid.uuid4().hex[:12]}"
    admin = with_database(dsn, "postgres")
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(dsn, name)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def with_database(dsn: str, dbname: str) -> str:
    """The postgresql:// URL `dsn` with its database replaced by `dbname`."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgresql", "postgres"):
        raise SystemExit(f"--dsn must be a postgresql:// URL, not {parts.scheme or dsn!r}")
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def redact(dsn: str) -> str:
    """`dsn` as host:port/dbname, without user or password."""
    parts = urlsplit(dsn)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


def report(title: str, rates: dict[str, float]) -> None:
    """Print the rates like benchmarks/throughput.py does."""
    print(title)
    for name, rate in rates.items():
        print(f"  {name:>14}: {rate:>10,.0f} jobs/s")
