"""Parsing command-line values; every bad value is a UsageError that names it."""

from __future__ import annotations

import json
import re
from typing import Any

from wireframe.cli.errors import UsageError
from wireframe.scheduler.codec import job_type_name
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.priority import coerce_priority
from wireframe.store import JobState

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str, *, option: str = "duration") -> float:
    """Seconds in a duration: ``30s``, ``15m``, ``12h``, ``7d``, ``1w``, ``1h30m`` or ``90``."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        pos = 0
        seconds = 0.0
        for match in _DURATION.finditer(value):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNITS[match.group(2)]
            pos = match.end()
        if pos != len(value) or not value:
            raise UsageError(
                f"{option}: invalid duration {text!r}; write e.g. 30s, 15m, 12h, 7d or 1h30m"
            ) from None
    if not seconds >= 0 or seconds == float("inf"):
        raise UsageError(f"{option}: invalid duration {text!r}; it must be a finite value >= 0")
    return seconds


def parse_job_id(text: str) -> int:
    """A job id: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"job id must be a positive integer, got {text!r}") from None
    if value < 1:
        raise UsageError(f"job id must be a positive integer, got {text!r}")
    return value


def parse_states(values: list[str] | None) -> tuple[JobState, ...]:
    """Job states from repeated or comma-separated ``--state`` values."""
    states: list[JobState] = []
    for value in values or []:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            try:
                states.append(JobState(name))
            except ValueError:
                known = ", ".join(s.value for s in JobState)
                raise UsageError(f"--state: unknown job state {part!r}; one of {known}") from None
    return tuple(dict.fromkeys(states))


def parse_tags(text: str | None) -> tuple[str, ...]:
    """Tags from ``a,b,c`` (blank parts ignored)."""
    if not text:
        return ()
    return tuple(t.strip() for t in text.split(",") if t.strip())


def parse_job_type(text: str) -> tuple[str, str]:
    """``(domain, type)`` from ``domain::name``, both parts checked."""
    domain, sep, name = text.partition("::")
    if not sep:
        raise UsageError(f"job type {text!r} must be written domain::name")
    try:
        return domain, job_type_name(domain, name)
    except ConfigError as exc:
        raise UsageError(f"job type {text!r}: {exc}") from None


def parse_payload(text: str) -> str:
    """The payload as canonical JSON; it must be a JSON object."""
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--payload is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise UsageError(
            f'--payload must be a JSON object such as \'{{"path": "a.jpg"}}\', '
            f"got a JSON {type(value).__name__}"
        )
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def parse_priority(text: str | None) -> int | None:
    """A priority: a level name (low, normal, high, critical) or an integer."""
    if text is None:
        return None
    value: object = text
    try:
        value = int(text)
    except ValueError:
        pass
    try:
        return coerce_priority(value, where="--priority")
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def parse_positive_int(text: str, *, option: str) -> int:
    """An integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{option} must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise UsageError(f"{option} must be an integer >= 1, got {text!r}")
    return value
