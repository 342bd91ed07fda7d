"""Fixtures of the multi-process tests: a fresh PostgreSQL schema per test and worker processes
started with `python -m wireframe worker`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent / "store"))

from cluster_support import Cluster  # noqa: E402
from pg_support import drop_schema, new_schema_name, require_pg  # noqa: E402


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here needs the server."""
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A fresh schema (with the `runs` table the handlers write) and its worker processes."""
    require_pg()
    c = Cluster(new_schema_name("wfp"))
    c.sql(f"CREATE SCHEMA {c.schema}")
    c.sql("CREATE TABLE runs (job_id BIGINT, attempt INT, worker TEXT)")
    try:
        yield c
    finally:
        c.stop_all()
        drop_schema(c.schema)
