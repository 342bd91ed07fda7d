"""Dashboard test fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wireframe.store import SqliteStore

pytest.importorskip("jinja2", reason="the dashboard needs Jinja2 (the test extra installs it)")


@pytest.fixture
async def store(tmp_path: Path, anyio_backend: str) -> AsyncIterator[SqliteStore]:
    """An open SQLite store in the test's directory."""
    opened = SqliteStore(tmp_path / "jobs.db")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
