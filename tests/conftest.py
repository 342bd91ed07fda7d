"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import sys

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each anyio test once per backend."""
    return str(request.param)


@pytest.fixture(autouse=True)
def _not_under_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests run as if not started by systemd, even when the test runner is (CI in a unit)."""
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Vacuum the catalogs after a run that dropped PostgreSQL test schemas."""
    support = sys.modules.get("pg_support")  # imported only if a PostgreSQL test ran
    if support is not None:
        support.vacuum_catalogs()
