"""Logging of the service lifecycle: the ``wireframe.service`` logger, rich set-up, stop summary."""

from __future__ import annotations

import io
import logging
from collections import Counter

from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from wireframe.service.status import ServiceStatus, TaskState

logger = logging.getLogger("wireframe.service")
"""The logger every service message goes to."""

SUMMARY_ROWS = 20
"""At most this many task rows in the stop summary; the rest are counted by state."""

_STATE_STYLE = {
    TaskState.FINISHED: "green",
    TaskState.FAILED: "bold red",
    TaskState.CANCELLED: "red",
    TaskState.SKIPPED: "dim",
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
    TaskState.STOPPING: 2,
    TaskState.FINISHED: 3,
    TaskState.WAITING: 4,
    TaskState.PENDING: 4,
    TaskState.SKIPPED: 5,
}


class Summary:
    """A stop summary passed as a log argument: text for plain handlers, a table for rich."""

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
        """Emit the record; a Summary argument is printed as a table after the line."""
        args = record.args
        if isinstance(args, tuple) and args and isinstance(args[-1], Summary):
            summary = args[-1]
            short = logging.makeLogRecord(record.__dict__)
            short.msg = str(record.msg).rsplit("\n", 1)[0]
            short.args = args[:-1]
            super().emit(short)
            self.console.print(summary.table())
        else:
            super().emit(record)


def configure_logging(level: int = logging.INFO) -> bool:
    """Install a rich handler on the root logger unless logging is already configured.

    Returns True if a handler was installed.
    """
    root = logging.getLogger()
    if root.handlers or logger.handlers:
        return False
    handler = ServiceRichHandler(show_path=False, rich_tracebacks=True, markup=False)
    handler.setFormatter(logging.Formatter("%(message)s", datefmt="[%X]"))
    root.addHandler(handler)
    root.setLevel(level)
    return True


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
            t.error or _OUTCOME.get(t.state, ""),
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
    return table


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} s"
