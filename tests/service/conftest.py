"""Helpers for the service tests: services that leave signals alone, a bounded run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest

from wireframe.service import Service

LIMIT = 5.0  # seconds; a safety net so a broken service fails a test instead of hanging it


@pytest.fixture
def make_service() -> Callable[..., Service]:
    """Build a Service that does not touch signal handlers (tests call stop() themselves)."""

    def make(name: str = "svc", **kwargs: Any) -> Service:
        kwargs.setdefault("handle_signals", False)
        kwargs.setdefault("graceful_timeout", 2.0)
        return Service(name, **kwargs)

    return make


async def run_bounded(service: Service) -> None:
    """Run ``service`` with a safety time limit."""
    with anyio.fail_after(LIMIT):
        await service.run()


async def run_capturing(service: Service, errors: list[Exception]) -> None:
    """Run ``service`` with a safety time limit, appending what it raises to ``errors``."""
    try:
        await run_bounded(service)
    except Exception as exc:
        errors.append(exc)
