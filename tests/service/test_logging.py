"""Logging of the lifecycle, the stop summary, run_sync exit codes and in-process signals."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from wireframe.service import (
    Service,
    ServiceError,
    ShutdownHook,
    StopReasonKind,
    StopReceiver,
    Task,
    TaskKind,
)
from wireframe.service.log import (
    SUMMARY_ROWS,
    Summary,
    configure_logging,
    make_handler,
    render_summary,
)

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
    summary: Any = caplog.records[-1]
    assert summary.levelno == logging.ERROR
    text = summary.getMessage()
    assert text == "service 'logged' failed: oneshot 'bad' failed: ValueError('bad input')"
    assert summary.stop_reason_kind == "task_failed"
    assert summary.task_counts == {"failed": 1, "finished": 1}
    bad, ok = summary.tasks  # failures first
    assert (bad["id"], bad["kind"], bad["state"]) == ("bad", "oneshot", "failed")
    assert bad["outcome"] == "ValueError('bad input')" and bad["duration"] >= 0
    assert (ok["id"], ok["state"], ok["outcome"]) == ("ok", "finished", "ok")


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
    summary: Any = caplog.records[-1]
    assert summary.getMessage().endswith(": 500 finished")
    assert summary.task_counts == {"finished": 500}
    assert len(summary.tasks) == SUMMARY_ROWS and summary.tasks_not_listed == 500 - SUMMARY_ROWS
    table = render_summary(service.status())
    assert f"... {500 - SUMMARY_ROWS} more" in table and "finished" in table
    assert len(table.splitlines()) < 40  # one screen


def test_summary_renders_as_text_and_as_a_table(make_service: MakeService) -> None:
    service = make_service().add_task(Task.from_fn("t", _noop))
    summary = Summary(service.status())
    assert "pending" in str(summary) and str(summary) == render_summary(service.status())
    assert summary.table().row_count == 1


def test_configure_logging_leaves_existing_handlers_alone(make_service: MakeService) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        root.handlers = [logging.NullHandler()]
        assert configure_logging() is False
        with pytest.raises(ValueError, match="log format 'xml'"):  # bad input, handler or not
            configure_logging(format="xml")
        with pytest.raises(ValueError, match="log format 'txt'"):
            make_service().add_task(Task.from_fn("t", _noop)).run_sync(log_format="txt")  # type: ignore[arg-type]
        root.handlers = []
        assert configure_logging(format="rich") is True
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


@pytest.fixture
def capture() -> Iterator[Callable[[str], io.StringIO]]:
    """Install a handler of the given format on the root logger; yield what it wrote."""
    root = logging.getLogger()
    saved = root.level
    handlers: list[logging.Handler] = []

    def install(format: str) -> io.StringIO:
        stream = io.StringIO()
        handlers.append(make_handler(format, stream))
        root.addHandler(handlers[-1])
        root.setLevel(logging.INFO)
        return stream

    try:
        yield install
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(saved)


BOX = set("┃│━─┏┓┗┛┡┩└┘╇")


@pytest.mark.anyio
async def test_the_stop_summary_is_fields_in_json_and_a_table_on_rich(
    make_service: MakeService, capture: Callable[[str], io.StringIO]
) -> None:
    json_lines, rich_text = capture("json"), capture("rich")

    def flush() -> None:
        pass

    service = make_service("summed")
    service.add_task(Task.from_fn("once", _noop, kind=TaskKind.ONESHOT))
    service.add_shutdown_hook(ShutdownHook("flush", flush))
    await run_bounded(service)
    records = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    summary = records[-1]
    assert summary["message"] == (
        "service 'summed' stopped cleanly (all oneshot tasks and preconditions finished): "
        "1 finished; hooks: 1 finished"
    )
    assert not BOX & set(json_lines.getvalue())  # no terminal art in JSON lines
    assert summary["stop_reason_kind"] == "all_done"
    assert summary["task_counts"] == {"finished": 1}
    (task,) = summary["tasks"]
    assert {k: task[k] for k in ("id", "kind", "state", "outcome")} == {
        "id": "once",
        "kind": "oneshot",
        "state": "finished",
        "outcome": "ok",
    }
    (hook,) = summary["hooks"]
    assert (hook["id"], hook["kind"], hook["state"]) == ("flush", "shutdown hook", "finished")
    assert all(r["service"] == "summed" for r in records)
    screen = rich_text.getvalue()  # a person's terminal: the line, then the table
    assert "stopped cleanly" in screen and BOX & set(screen)
    for word in ("task", "kind", "state", "duration", "outcome", "once", "flush"):
        assert word in screen


@pytest.mark.anyio
async def test_records_from_threads_the_service_did_not_start_name_it(
    make_service: MakeService, capture: Callable[[str], io.StringIO]
) -> None:
    stream = capture("json")
    pool = logging.getLogger("tests.pool")

    async def main(stop: StopReceiver) -> None:
        thread = threading.Thread(target=pool.warning, args=("from a pool thread",))
        thread.start()
        thread.join()

    service = make_service("threaded").add_task(Task.from_fn("main", main, kind=TaskKind.ONESHOT))
    await run_bounded(service)
    pool.warning("after the run")
    records = {r["message"]: r for r in map(json.loads, stream.getvalue().splitlines())}
    assert records["from a pool thread"]["service"] == "threaded"
    assert records["from a pool thread"]["task"] is None  # the thread's own context is empty
    assert records["after the run"]["service"] is None  # no service runs any more
