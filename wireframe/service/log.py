"""Logging of the service lifecycle: the ``wireframe.service`` logger, rich or JSON set-up, and
the stop summary (a table on a terminal, structured fields in JSON lines)."""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import logging
import os
import sys
import time
import traceback
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from wireframe.service.status import ServiceStatus, TaskState, TaskStatus

logger = logging.getLogger("wireframe.service")
"""The logger every service message goes to."""

SUMMARY_ROWS = 20
"""At most this many task rows in the stop summary; the rest are counted by state."""

_STATE_STYLE = {
    TaskState.FINISHED: "green",
    TaskState.FAILED: "bold red",
    TaskState.CANCELLED: "red",
    TaskState.SKIPPED: "dim",
    TaskState.RESTARTING: "yellow",
}
_OUTCOME = {
    TaskState.FINISHED: "ok",
    TaskState.CANCELLED: "did not stop in time: cancelled",
    TaskState.SKIPPED: "never started (stopped first)",
}
_ORDER = {
    TaskState.FAILED: 0,
    TaskState.CANCELLED: 1,
    TaskState.RUNNING: 2,
    TaskState.RESTARTING: 2,
    TaskState.STOPPING: 2,
    TaskState.FINISHED: 3,
    TaskState.WAITING: 4,
    TaskState.PENDING: 4,
    TaskState.SKIPPED: 5,
}


SUMMARY_ATTR = "_wireframe_summary"
"""The record attribute holding a ``Summary`` for the rich handler (JSON skips ``_`` names)."""


class Summary:
    """A stop summary: a table for the rich handler, plain text with ``str()``."""

    def __init__(self, status: ServiceStatus) -> None:
        self.status = status

    def table(self) -> Table:
        """The summary as a rich table."""
        return summary_table(self.status)

    def __str__(self) -> str:
        return render_summary(self.status)


class ServiceRichHandler(RichHandler):
    """A RichHandler that prints a stop summary as a full-width table below its log line."""

    def emit(self, record: logging.LogRecord) -> None:
        """Emit the record; a record carrying a Summary gets its table printed after the line."""
        super().emit(record)
        summary = getattr(record, SUMMARY_ATTR, None)
        if isinstance(summary, Summary):
            self.console.print(summary.table())


LogFormat = Literal["rich", "json", "auto"]
"""How log records are written: rich console output, JSON lines, or rich on a TTY only."""

LOG_FORMATS: tuple[str, ...] = ("rich", "json", "auto")
"""The accepted values of ``LogFormat`` (also of the ``WIREFRAME_LOG_FORMAT`` variable)."""

LOG_FORMAT_ENV = "WIREFRAME_LOG_FORMAT"
"""Environment variable choosing the format when ``configure_logging`` is given none."""

current_service: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wireframe_service", default=None
)
"""The name of the service whose code is running (set by ``Service.run``)."""
current_task: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wireframe_task", default=None
)
"""The id of the task whose code is running (set for each task by the service)."""
current_job: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "wireframe_job_id", default=None
)
"""The id of the job whose handler is running (set by the scheduler for each job)."""

CONTEXT_FIELDS = ("service", "task", "job_id")
"""The attributes ``ContextFilter`` adds to every record."""

_running: list[str] = []  # names of the services running in this process, oldest first


@contextlib.contextmanager
def service_running(name: str) -> Iterator[None]:
    """While the block runs, records from any thread with no service of its own name ``name``.

    That covers threads the service did not start (a connection pool's), whose context has
    no ``service``; if several services run in one process, the one started last is named.
    """
    _running.append(name)
    try:
        yield
    finally:
        _running.remove(name)


def _current_service() -> str | None:
    service = current_service.get()
    if service is None:
        try:
            return _running[-1]  # read from any thread: the list may empty meanwhile
        except IndexError:
            return None
    return service


@contextlib.contextmanager
def log_context(
    *, service: str | None = None, task: str | None = None, job_id: int | None = None
) -> Iterator[None]:
    """Within the block, records carry these ids (the ones given; others are left as they are)."""
    resets: list[contextlib.AbstractContextManager[None]] = []
    if service is not None:
        resets.append(_setting(current_service, service))
    if task is not None:
        resets.append(_setting(current_task, task))
    if job_id is not None:
        resets.append(_setting(current_job, job_id))
    with contextlib.ExitStack() as stack:
        for reset in resets:
            stack.enter_context(reset)
        yield


@contextlib.contextmanager
def _setting(var: contextvars.ContextVar[Any], value: object) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


class ContextFilter(logging.Filter):
    """Adds ``service``, ``task`` and ``job_id`` (None when unknown) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Fill the context fields the record does not already carry; never drops a record."""
        values = {
            "service": _current_service(),
            "task": current_task.get(),
            "job_id": current_job.get(),
        }
        for name, value in values.items():
            if getattr(record, name, None) is None:
                setattr(record, name, value)
        return True


def context_suffix(record: logging.LogRecord) -> str:
    """``[service/task job=N]`` for a record's context fields, or '' when it has none."""
    service = getattr(record, "service", None)
    task = getattr(record, "task", None)
    job_id = getattr(record, "job_id", None)
    where = "/".join(str(v) for v in (service, task) if v is not None)
    if job_id is not None:
        where = f"{where} job={job_id}" if where else f"job={job_id}"
    return f" [{where}]" if where else ""


class RichContextFormatter(logging.Formatter):
    """The message followed by its context (``[service/task job=N]``) for the rich handler."""

    def format(self, record: logging.LogRecord) -> str:
        """Format the message and append the record's context."""
        text = super().format(record)
        suffix = context_suffix(record)
        if not suffix:
            return text
        first, newline, rest = text.partition("\n")
        return f"{first}{suffix}{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, service, task, job_id, extras."""

    _STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as one line of JSON (tracebacks go in ``exc_info`` as text)."""
        data: dict[str, Any] = {
            "ts": round(record.created, 6),
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            data[name] = getattr(record, name, None)
        for name, value in record.__dict__.items():
            if name not in self._STANDARD and name not in data and not name.startswith("_"):
                data[name] = value if _jsonable(value) else repr(value)
        if record.exc_info and record.exc_info[1] is not None:
            data["exc_info"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        if record.stack_info:
            data["stack_info"] = record.stack_info
        return json.dumps(data, ensure_ascii=False, default=repr)


def _jsonable(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool | list | dict)


def resolve_log_format(format: str | None = None, stream: Any = None) -> Literal["rich", "json"]:
    """Pick rich or JSON: ``format``, else ``$WIREFRAME_LOG_FORMAT``, else auto.

    ``auto`` means rich on a TTY (``stream``, default stderr) and JSON lines otherwise.
    A value that is none of rich, json, auto is a ValueError naming it.
    """
    chosen = format if format is not None else os.environ.get(LOG_FORMAT_ENV) or "auto"
    if chosen not in LOG_FORMATS:
        raise ValueError(f"log format {chosen!r}: use one of {', '.join(LOG_FORMATS)}")
    if chosen == "auto":
        target = sys.stderr if stream is None else stream
        isatty = getattr(target, "isatty", None)
        return "rich" if callable(isatty) and isatty() else "json"
    return "rich" if chosen == "rich" else "json"


def make_handler(format: str | None = None, stream: Any = None) -> logging.Handler:
    """A handler in the chosen format (see ``resolve_log_format``) with the ``ContextFilter``."""
    handler: logging.Handler
    if resolve_log_format(format, stream) == "rich":
        console = Console(stderr=True) if stream is None else Console(file=stream)
        handler = ServiceRichHandler(
            console=console, show_path=False, rich_tracebacks=True, markup=False
        )
        handler.setFormatter(RichContextFormatter("%(message)s", datefmt="[%X]"))
    else:
        handler = logging.StreamHandler(sys.stderr if stream is None else stream)
        handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: int = logging.INFO, format: str | None = None) -> bool:
    """Install a handler on the root logger unless logging is already configured.

    ``format`` is rich, json or auto (rich on a TTY, JSON lines otherwise); without it,
    ``$WIREFRAME_LOG_FORMAT`` decides, and auto is the default. Every record carries
    ``service``, ``task`` and ``job_id``. Returns True if a handler was installed. A
    ``format`` that is none of rich, json, auto is a ValueError, installed or not.
    """
    if format is not None and format not in LOG_FORMATS:
        raise ValueError(f"log format {format!r}: use one of {', '.join(LOG_FORMATS)}")
    root = logging.getLogger()
    if root.handlers or logger.handlers:
        return False
    root.addHandler(make_handler(format))
    root.setLevel(level)
    return True


def log_stop_summary(level: int, message: str, status: ServiceStatus) -> None:
    """Log the end of a run: a one-line message with the summary as fields (see below).

    In JSON lines the fields are ``stop_reason``, ``stop_reason_kind``, ``task_counts``,
    ``tasks`` and ``hooks``; the rich handler prints the summary as a table below the line.
    """
    extra: dict[str, Any] = {**summary_fields(status), SUMMARY_ATTR: Summary(status)}
    logger.log(level, "%s", message, extra=extra, stacklevel=2)


def summary_fields(status: ServiceStatus) -> dict[str, Any]:
    """The stop summary as JSON-able fields.

    ``stop_reason`` (text) and ``stop_reason_kind``; ``task_counts`` (tasks by state);
    ``tasks``: ``{id, kind, state, duration, outcome}`` for at most ``SUMMARY_ROWS`` tasks,
    failures first (``tasks_not_listed`` counts the rest); ``hooks``: the same for each hook;
    ``resources`` (if any): the same for each managed resource, in the order opened.
    """
    reason = status.stop_reason
    tasks = sorted(status.tasks, key=lambda t: _ORDER.get(t.state, 9))
    fields: dict[str, Any] = {
        "stop_reason": None if reason is None else str(reason),
        "stop_reason_kind": None if reason is None else reason.kind.value,
        "task_counts": dict(Counter(t.state.value for t in status.tasks)),
        "tasks": [_task_row(t) for t in tasks[:SUMMARY_ROWS]],
        "hooks": [_row(h.id, "shutdown hook", h.state, h.duration, h.error) for h in status.hooks],
    }
    if status.resources:
        fields["resources"] = [
            _row(r.id, "resource", r.state, r.duration, r.error) for r in status.resources
        ]
    if len(tasks) > SUMMARY_ROWS:
        fields["tasks_not_listed"] = len(tasks) - SUMMARY_ROWS
    return fields


def _task_row(task: TaskStatus) -> dict[str, Any]:
    row = _row(task.id, task.kind.value, task.state, task.duration, _outcome(task))
    if task.restarts:
        row["restarts"] = task.restarts
        row["last_error"] = task.last_error
    return row


def _outcome(task: TaskStatus) -> str:
    """The task's error, else what its state means; a restarted task adds its count."""
    text = task.error or _OUTCOME.get(task.state, "")
    if task.state is TaskState.SKIPPED and task.restarts:
        text = "not restarted (stopped first)"
    if task.restarts and not task.error:
        plural = "restart" if task.restarts == 1 else "restarts"
        text += f"{'; ' if text else ''}{task.restarts} {plural}, last error: {task.last_error}"
    return text


def _row(
    id: str, kind: str, state: TaskState, duration: float | None, error: str | None
) -> dict[str, Any]:
    return {
        "id": id,
        "kind": kind,
        "state": state.value,
        "duration": None if duration is None else round(duration, 6),
        "outcome": error or _OUTCOME.get(state, ""),
    }


def summary_counts(status: ServiceStatus) -> str:
    """``3 finished, 1 skipped`` for the tasks (and the hooks, if any): a summary in words."""
    text = _counts(t.state for t in status.tasks)
    if status.hooks:
        text += f"; hooks: {_counts(h.state for h in status.hooks)}"
    if status.resources:
        text += f"; resources: {_counts(r.state for r in status.resources)}"
    return text


def _counts(states: Iterable[TaskState]) -> str:
    counts = Counter(state.value for state in states)
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "no tasks"


def render_summary(status: ServiceStatus, width: int = 100) -> str:
    """Render the stop summary table as plain text."""
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=False, color_system=None).print(
        summary_table(status)
    )
    return out.getvalue().rstrip()


def summary_table(status: ServiceStatus) -> Table:
    """A one-screen table of tasks and hooks: kind, state, duration, outcome."""
    table = Table(title=f"service {status.name!r}: {status.stop_reason or 'stopped'}")
    for column in ("task", "kind", "state", "duration", "outcome"):
        table.add_column(column, no_wrap=column != "outcome")
    tasks = sorted(status.tasks, key=lambda t: _ORDER.get(t.state, 9))
    for t in tasks[:SUMMARY_ROWS]:
        table.add_row(
            t.id,
            t.kind.value,
            f"[{_STATE_STYLE.get(t.state, 'default')}]{t.state.value}",
            _seconds(t.duration),
            _outcome(t),
        )
    hidden = tasks[SUMMARY_ROWS:]
    if hidden:
        counts = Counter(t.state.value for t in hidden)
        text = ", ".join(f"{n} {state}" for state, n in sorted(counts.items()))
        table.add_row(f"... {len(hidden)} more", "", text, "", "")
    for h in status.hooks:
        table.add_row(
            h.id,
            "shutdown hook",
            f"[{_STATE_STYLE.get(h.state, 'default')}]{h.state.value}",
            _seconds(h.duration),
            h.error or _OUTCOME.get(h.state, ""),
        )
    for r in reversed(status.resources):  # in the order they were closed
        table.add_row(
            r.id,
            "resource",
            f"[{_STATE_STYLE.get(r.state, 'default')}]{r.state.value}",
            _seconds(r.duration),
            r.error or _OUTCOME.get(r.state, ""),
        )
    return table


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} s"
