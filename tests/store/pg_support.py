"""PostgreSQL test plumbing: the server's DSN, a reachability check, and throwaway schemas.

`WIREFRAME_TEST_PG_DSN` (default postgresql://postgres@127.0.0.1:5432/test) names the server.
When it cannot be reached, PostgreSQL tests skip with the reason, except under `CI=true`, where
they fail: in CI they must run.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import sniffio

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


def pg_dsn() -> str:
    """The test server's DSN."""
    return os.environ.get("WIREFRAME_TEST_PG_DSN", DEFAULT_DSN)


@functools.cache
def unreachable_reason() -> str | None:
    """Why the test server cannot be used, or None if it can (checked once per session)."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    try:
        psycopg.connect(pg_dsn(), connect_timeout=3).close()
    except psycopg.Error as exc:
        from wireframe.store.postgres import redact

        return f"PostgreSQL at {redact(pg_dsn())} is unreachable: {' '.join(str(exc).split())}"
    return None


def require_pg() -> str:
    """The DSN, or skip (fail under CI=true) when the server is unreachable."""
    reason = unreachable_reason()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)", pytrace=False)
        pytest.skip(reason)
    return pg_dsn()


def new_schema_name(prefix: str = "wft") -> str:
    """A fresh schema name for one test."""
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


_dropped = 0
"""Schemas dropped since the catalogs were last vacuumed."""

_CATALOGS = (
    "pg_attribute",
    "pg_attrdef",
    "pg_class",
    "pg_constraint",
    "pg_depend",
    "pg_index",
    "pg_namespace",
    "pg_sequence",
    "pg_statistic",
    "pg_type",
)
"""The catalogs that a schema of the store's tables fills, and that dropping it leaves dead."""


def drop_schema(name: str) -> None:
    """Drop a test schema and everything in it."""
    global _dropped
    import psycopg

    with psycopg.connect(pg_dsn(), autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    _dropped += 1


def vacuum_catalogs() -> None:
    """Make the catalog rows of the schemas this session dropped reusable.

    A run creates and drops a schema per PostgreSQL test, hundreds of tables and thousands of
    catalog rows each time. Where autovacuum is off (as on some CI machines), nothing else
    reclaims them and the catalogs grow by tens of MB a run, slowing every later run. A user
    who may not vacuum the catalogs gets warnings from the server, not an error.
    """
    global _dropped
    if not _dropped or unreachable_reason() is not None:
        return
    import psycopg

    try:
        with psycopg.connect(pg_dsn(), autocommit=True) as conn:
            conn.execute("VACUUM " + ", ".join(f"pg_catalog.{c}" for c in _CATALOGS))
    except psycopg.Error:
        return  # housekeeping of the server, not a test outcome
    _dropped = 0


@asynccontextmanager
async def fresh_store_url(kind: str, tmp_path: Path, prefix: str = "wft") -> AsyncIterator[str]:
    """The URL of a fresh store of `kind` (memory, sqlite or postgres); a PostgreSQL schema is
    dropped afterwards, and a PostgreSQL test skips under trio (the store is asyncio-only)."""
    if kind == "memory":
        yield "memory://"
    elif kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
    else:
        if sniffio.current_async_library() != "asyncio":
            pytest.skip("PostgreSQL runs under asyncio only")
        schema = new_schema_name(prefix)
        try:
            yield f"{require_pg()}?schema={schema}"
        finally:
            drop_schema(schema)
