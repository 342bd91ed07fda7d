"""Fixtures of the service tests: services that leave signals alone."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from wireframe.service import Service


@pytest.fixture
def make_service() -> Callable[..., Service]:
    """Build a Service that does not touch signal handlers (tests call stop() themselves)."""

    def make(name: str = "svc", **kwargs: Any) -> Service:
        kwargs.setdefault("handle_signals", False)
        kwargs.setdefault("graceful_timeout", 2.0)
        return Service(name, **kwargs)

    return make
