"""Log records carry service, task and job ids; JSON lines or rich, chosen by format or TTY."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from wireframe import Domain, JobContext, Scheduler, Service, StopReceiver, Task, TaskKind
from wireframe.service.log import (
    ContextFilter,
    JsonFormatter,
    RichContextFormatter,
    log_context,
    make_handler,
    resolve_log_format,
)

app_log = logging.getLogger("tests.cli.app")


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """JSON lines of every record, from the root logger."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.anyio
async def test_records_name_the_service_the_task_and_the_job(captured: io.StringIO) -> None:
    domain = Domain("logs")

    @domain.job()
    async def hello(job: dict[str, Any], ctx: JobContext) -> None:
        app_log.info("inside job %s", ctx.job.id)

    scheduler = Scheduler("memory://", domains=[domain], poll_interval=0.05)
    service = Service("logsvc", handle_signals=False, graceful_timeout=5)

    async def other(stop: StopReceiver) -> None:
        app_log.info("from another task")

    service.add_task(scheduler).add_task(Task.from_fn("other", other, kind=TaskKind.ONESHOT))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            job_id = (await scheduler.submit({}, type="logs::hello")).id
            await scheduler.result(job_id, timeout=10)
            service.stop()
    records = lines(captured)
    inside = next(r for r in records if r["message"] == f"inside job {job_id}")
    assert (inside["service"], inside["task"], inside["job_id"]) == ("logsvc", "scheduler", job_id)
    outside = next(r for r in records if r["message"] == "from another task")
    assert (outside["service"], outside["task"], outside["job_id"]) == ("logsvc", "other", None)
    lifecycle = next(r for r in records if r["message"] == "service 'logsvc' is ready")
    assert lifecycle["service"] == "logsvc" and lifecycle["logger"] == "wireframe.service"
    for record in records:
        assert {"ts", "time", "level", "logger", "message", "service", "task", "job_id"} <= set(
            record
        )


def test_json_lines_keep_extras_and_tracebacks() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    record.custom = {"a": 1}
    record.odd = object()
    with log_context(service="s", task="t", job_id=7):
        ContextFilter().filter(record)
    data = json.loads(JsonFormatter().format(record))
    assert data["message"] == "failed here" and data["level"] == "error"
    assert (data["service"], data["task"], data["job_id"]) == ("s", "t", 7)
    assert data["custom"] == {"a": 1} and data["odd"].startswith("<object")
    assert "ValueError: boom" in data["exc_info"]
    text = RichContextFormatter("%(message)s").format(record)
    assert text.splitlines()[0] == "failed here [s/t job=7]"


def test_log_context_nests_and_resets() -> None:
    record = logging.makeLogRecord({"msg": "m"})
    with log_context(service="a"), log_context(job_id=3):
        ContextFilter().filter(record)
    assert (record.service, record.task, record.job_id) == ("a", None, 3)  # type: ignore[attr-defined]
    after = logging.makeLogRecord({"msg": "m"})
    ContextFilter().filter(after)
    assert (after.service, after.job_id) == (None, None)  # type: ignore[attr-defined]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_format_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WIREFRAME_LOG_FORMAT", raising=False)
    assert resolve_log_format(stream=_Tty()) == "rich"  # auto by default, as the CLI does
    assert resolve_log_format(stream=io.StringIO()) == "json"
    assert resolve_log_format("auto", _Tty()) == "rich"
    assert resolve_log_format("auto", io.StringIO()) == "json"
    monkeypatch.setenv("WIREFRAME_LOG_FORMAT", "json")
    assert resolve_log_format() == "json"
    assert type(make_handler(stream=io.StringIO()).formatter) is JsonFormatter
    with pytest.raises(ValueError, match="'xml'"):
        resolve_log_format("xml")
