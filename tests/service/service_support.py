"""Helpers shared by the service tests: a run with a safety time limit."""

from __future__ import annotations

import anyio

from wireframe.service import Service

LIMIT = 5.0  # seconds; a safety net so a broken service fails a test instead of hanging it


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
