"""Turning store records into JSON-able dicts and rich renderables."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from typing import Any

import attrs
from rich import box
from rich.table import Table
from rich.text import Text

from wireframe.store import FAR_FUTURE, AttemptRecord, Checkpoint, JobRecord, JobState

PRIORITY_NAMES: Mapping[int, str] = {0: "low", 10: "normal", 20: "high", 30: "critical"}
"""The named priority levels (`wireframe.Priority`), shown instead of their numbers."""

_UNTIL = re.compile(r"\buntil (\d{9,}(?:\.\d+)?)\b")

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


def priority(value: int) -> str:
    """A priority by its level name where it has one (``high``), else its number."""
    return PRIORITY_NAMES.get(value, str(value))


def priority_detail(job: JobRecord) -> str:
    """``high``, or ``high (base normal)`` for a job aging raised."""
    shown = priority(job.priority)
    if job.priority == job.base_priority:
        return shown
    return f"{shown} (base {priority(job.base_priority)})"


def clock_time(ts: float, now: float | None = None) -> str:
    """``14:05:12`` today, ``2024-05-01 14:05:12`` on another day."""
    now = time.time() if now is None else now
    local = time.localtime(ts)
    if time.localtime(now)[:3] == local[:3]:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M:%S", local)


def relative(ts: float, now: float | None = None) -> str:
    """``in 58 min``, ``3 s ago``, ``in 2 h``: how far a time is from now, in words."""
    delta = ts - (time.time() if now is None else now)
    size = abs(delta)
    for unit, span in (("d", 86400), ("h", 3600), ("min", 60)):
        if size >= span:
            amount = f"{size / span:.0f} {unit}"
            break
    else:
        amount = f"{size:.0f} s"
    return f"in {amount}" if delta >= 0 else f"{amount} ago"


def reason(job: JobRecord, now: float | None = None) -> str:
    """Why a job is where it is, its times readable: ``sleeping (cool-off) until 14:05:12, in
    58 min``; a suspended job waiting for an event says when its wait times out."""
    text = job.reason or ""

    def readable(match: re.Match[str]) -> str:
        ts = float(match.group(1))
        return f"until {clock_time(ts, now)}, {relative(ts, now)}"

    text = _UNTIL.sub(readable, text)
    timed_event = (
        job.state is JobState.SUSPENDED
        and (job.wait_for or "").startswith("event:")
        and job.run_at < FAR_FUTURE
    )
    if timed_event and "until" not in text:
        text += f" (times out at {clock_time(job.run_at, now)}, {relative(job.run_at, now)})"
    return text


def jobs_table(
    jobs: list[JobRecord],
    title: str | None = None,
    caption: str | None = None,
    notes: Mapping[int, str] | None = None,
) -> Table:
    """A table of jobs: id, type, state, priority, attempt, age, progress, info; one line per
    job, readable at 80 columns (the type folds, the info is cut). `notes`: what the info of
    some jobs says first, by id (why a pending job waits)."""
    now = time.time()
    table = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("type", overflow="fold", min_width=12)
    table.add_column("state", no_wrap=True)
    table.add_column("prio", no_wrap=True)
    table.add_column("try", justify="right", no_wrap=True)
    table.add_column("age", justify="right", no_wrap=True)
    with_progress = any(job.progress is not None for job in jobs)
    if with_progress:
        table.add_column("done", justify="right", no_wrap=True)
    table.add_column("info", no_wrap=True, overflow="ellipsis", min_width=8, ratio=1)
    for job in jobs:
        note = notes.get(job.id) if notes else None
        info = note or job.error or job.progress_message or reason(job, now)
        row: list[str | Text] = [
            str(job.id),
            job.type,
            state_text(job.state),
            priority(job.priority),
            f"{job.attempt}/{job.max_attempts}",
            seconds(max(0.0, now - job.created_at)),
        ]
        if with_progress:
            row.append("" if job.progress is None else f"{job.progress:.0%}")
        table.add_row(*row, short(info, 200))
    return table
