"""Logging of the lifecycle, the stop summary, run_sync exit codes and in-process signals."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable

import anyio
import pytest

from wireframe.service import (
    Service,
    ServiceError,
    StopReasonKind,
    StopReceiver,
    Task,
    TaskKind,
)
from wireframe.service.log import SUMMARY_ROWS, Summary, configure_logging, render_summary

from service_support import run_bounded

MakeService = Callable[..., Service]


async def _noop(stop: StopReceiver) -> None:
    pass


@pytest.mark.anyio
async def test_start_end_duration_and_failure_are_logged(
    make_service: MakeService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wireframe.service")

    async def fails(stop: StopReceiver) -> None:
        raise ValueError("bad input")

    service = make_service("logged")
    service.add_task(Task.from_fn("ok", _noop, kind=TaskKind.ONESHOT))
    service.add_task(Task.from_fn("bad", fails, kind=TaskKind.ONESHOT))
    with pytest.raises(ServiceError):
        await run_bounded(service)
    messages = [r.getMessage() for r in caplog.records]
    assert "oneshot 'ok' started" in messages
    assert any(m.startswith("oneshot 'ok' finished after 0.0") for m in messages)
    failure = next(r for r in caplog.records if "'bad' failed after" in r.getMessage())
    assert failure.levelno == logging.ERROR and failure.exc_info is not None
    summary = caplog.records[-1]
    assert summary.levelno == logging.ERROR
    text = summary.getMessage()
    assert "service 'logged' failed: oneshot 'bad' failed" in text
    for word in ("task", "kind", "state", "duration", "outcome", "ok", "bad", "failed"):
        assert word in text


@pytest.mark.anyio
async def test_thousands_of_tasks_log_per_task_at_debug_only(
    make_service: MakeService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wireframe.service")
    service = make_service()
    for i in range(500):
        service.add_task(Task.from_fn(f"t{i}", _noop, kind=TaskKind.ONESHOT))
    await run_bounded(service)
    assert len(caplog.records) < 10
    text = caplog.records[-1].getMessage()
    assert f"... {500 - SUMMARY_ROWS} more" in text and "finished" in text
    assert len(text.splitlines()) < 40  # one screen


def test_summary_renders_as_text_and_as_a_table(make_service: MakeService) -> None:
    service = make_service().add_task(Task.from_fn("t", _noop))
    summary = Summary(service.status())
    assert "pending" in str(summary) and str(summary) == render_summary(service.status())
    assert summary.table().row_count == 1


def test_configure_logging_leaves_existing_handlers_alone() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        root.handlers = [logging.NullHandler()]
        assert configure_logging() is False
        root.handlers = []
        assert configure_logging() is True
        assert type(root.handlers[0]).__name__ == "ServiceRichHandler"
    finally:
        root.handlers, level = saved
        root.setLevel(level)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_sync_returns_the_exit_code(make_service: MakeService, backend: str) -> None:
    async def fails(stop: StopReceiver) -> None:
        raise RuntimeError("no")

    ok = make_service().add_task(Task.from_fn("t", _noop, kind=TaskKind.ONESHOT))
    assert ok.run_sync(backend=backend) == 0
    bad = make_service().add_task(Task.from_fn("t", fails))
    assert bad.run_sync(backend=backend) == 1
    assert make_service().run_sync(backend=backend) == 1  # empty: a configuration error


@pytest.mark.anyio
async def test_sigterm_in_process_requests_a_graceful_stop(make_service: MakeService) -> None:
    service = make_service(handle_signals=True)
    running = anyio.Event()

    async def main(stop: StopReceiver) -> None:
        running.set()
        await stop.wait()

    async def send() -> None:
        await running.wait()
        os.kill(os.getpid(), signal.SIGTERM)

    service.add_task(Task.from_fn("main", main))
    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        await run_bounded(service)
    reason = service.status().stop_reason
    assert reason is not None and reason.kind is StopReasonKind.SIGNAL
    assert str(reason) == "received SIGTERM"
