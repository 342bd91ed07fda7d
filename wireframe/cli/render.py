"""Turning store records into JSON-able dicts and rich renderables."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import attrs
from rich.table import Table
from rich.text import Text

from wireframe.store import AttemptRecord, Checkpoint, JobRecord, JobState

STATE_STYLE: Mapping[JobState, str] = {
    JobState.PENDING: "cyan",
    JobState.SCHEDULED: "blue",
    JobState.BLOCKED: "magenta",
    JobState.RUNNING: "bold yellow",
    JobState.WAITING: "yellow",
    JobState.SUSPENDED: "blue",
    JobState.PAUSED: "dim",
    JobState.COMPLETED: "green",
    JobState.FAILED: "bold red",
    JobState.CANCELLED: "red",
    JobState.EXPIRED: "red",
    JobState.DEPENDENCY_FAILED: "red",
}


def decode(text: str | None) -> Any:
    """JSON text as a value (the text itself when it is not JSON)."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def job_dict(job: JobRecord) -> dict[str, Any]:
    """A job as JSON-able data, payload and result decoded."""
    data = attrs.asdict(job, recurse=False)
    data["state"] = job.state.value
    data["tags"] = list(job.tags)
    data["depends_on"] = list(job.depends_on)
    data["resources"] = dict(job.resources)
    data["payload"] = decode(job.payload)
    data["result"] = decode(job.result)
    return data


def attempt_dict(attempt: AttemptRecord) -> dict[str, Any]:
    """An attempt as JSON-able data."""
    return attrs.asdict(attempt)


def checkpoint_dict(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint as JSON-able data, value decoded."""
    data = attrs.asdict(checkpoint)
    data["value"] = decode(checkpoint.value)
    return data


def state_text(state: JobState) -> Text:
    """A job state, coloured."""
    return Text(state.value, style=STATE_STYLE.get(state, ""))


def when(ts: float | None, now: float | None = None) -> str:
    """``2024-05-01 12:00:03 (3m ago)`` style time, or '' for None."""
    if ts is None:
        return ""
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ts))} ({ago(ts, now)})"


def ago(ts: float, now: float | None = None) -> str:
    """A short relative time: ``12s ago``, ``in 3m``."""
    delta = (time.time() if now is None else now) - ts
    text = seconds(abs(delta))
    return f"{text} ago" if delta >= 0 else f"in {text}"


def seconds(value: float) -> str:
    """A duration in its largest sensible unit: ``850ms``, ``12s``, ``3m``, ``2h``, ``4d``."""
    if value < 1:
        return f"{value * 1000:.0f}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if value >= size:
            return f"{value / size:.0f}{unit}"
    return f"{value:.0f}s"


def short(text: str | None, width: int = 60) -> str:
    """The first line of a text, cut to ``width`` characters."""
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def jobs_table(jobs: list[JobRecord], title: str | None = None) -> Table:
    """A table of jobs: id, type, state, priority, attempt, age, progress, error."""
    now = time.time()
    table = Table(title=title, show_lines=False)
    for name in ("id", "type", "state", "prio", "attempt", "created", "progress", "info"):
        table.add_column(
            name, justify="right" if name in ("id", "prio") else "left", no_wrap=name != "info"
        )
    for job in jobs:
        progress = "" if job.progress is None else f"{job.progress:.0%}"
        info = job.error or job.progress_message or job.reason or ""
        table.add_row(
            str(job.id),
            job.type,
            state_text(job.state),
            str(job.priority),
            f"{job.attempt}/{job.max_attempts}",
            ago(job.created_at, now),
            progress,
            short(info),
        )
    return table
