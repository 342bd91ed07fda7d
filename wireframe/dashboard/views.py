"""What each page shows, read from the Store protocol only (the dashboard needs no handler
code): plain data for the templates, every user value left as text for them to escape."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import attrs

from wireframe.store import (
    AttemptRecord,
    Checkpoint,
    JobQuery,
    JobRecord,
    JobState,
    Overlap,
    ScheduleRecord,
    Store,
)

CHILDREN_SHOWN = 50
"""Children listed per job in a job's tree (per level)."""

TREE_DEPTH = 3
"""Levels of descendants shown in a job's tree."""


def pretty(text: str | None) -> str:
    """JSON text indented for reading (the text itself if it is not JSON)."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        return text


def short(text: str | None, width: int = 80) -> str:
    """`text` on one line, cut to `width` characters."""
    if not text:
        return ""
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def when(ts: float | None) -> str:
    """A UNIX time as ``2026-05-01 12:00:03`` (UTC), or ''."""
    if ts is None or ts >= 9.0e15:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def seconds(value: float | None) -> str:
    """A duration for people: ``850 ms``, ``12.5 s``, ``3 m 20 s``, ``2 h 5 m``."""
    if value is None:
        return ""
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} m {int(value % 60)} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60)} m"


@attrs.frozen
class Node:
    """A job in a tree of children: the job, its children shown, and how many were left out."""

    job: JobRecord
    children: tuple[Node, ...]
    more: bool


async def tree(store: Store, job: JobRecord, depth: int = TREE_DEPTH) -> tuple[Node, ...]:
    """The children of `job`, and theirs, `depth` levels down (`CHILDREN_SHOWN` per level)."""
    if depth <= 0:
        return ()
    kids = await store.list_jobs(parent_id=job.id, limit=CHILDREN_SHOWN + 1)
    nodes = []
    for kid in kids[:CHILDREN_SHOWN]:
        below = await tree(store, kid, depth - 1)
        nodes.append(Node(kid, below, False))
    if len(kids) > CHILDREN_SHOWN:
        nodes.append(Node(kids[-1], (), True))
    return tuple(nodes)


@attrs.frozen
class Step:
    """One durable checkpoint on a job's timeline, with the time since the one before."""

    checkpoint: Checkpoint
    value: str
    gap: str


def timeline(checkpoints: Sequence[Checkpoint]) -> list[Step]:
    """The checkpoints in call order, each with the time elapsed since the previous one."""
    steps = []
    previous: float | None = None
    for c in checkpoints:
        gap = "" if previous is None else seconds(max(0.0, c.created_at - previous))
        steps.append(Step(c, short(c.value, 120), gap))
        previous = c.created_at
    return steps


@attrs.frozen
class Dependency:
    """A job this one depends on, and its state (None: it is gone)."""

    id: int
    job: JobRecord | None


@attrs.frozen
class Detail:
    """Everything the page of one job shows."""

    job: JobRecord
    attempts: tuple[AttemptRecord, ...]
    steps: tuple[Step, ...]
    children: tuple[Node, ...]
    dependencies: tuple[Dependency, ...]
    events: tuple[dict[str, Any], ...]
    parent: JobRecord | None


async def _events(
    store: Store, job: JobRecord, checkpoints: Sequence[Checkpoint]
) -> list[dict[str, Any]]:
    """The events the job waits for or waited for (durable `wait_event`), and those it emitted."""
    names: list[tuple[str, str]] = []
    if job.wait_for and job.wait_for.startswith("event:"):
        names.append((job.wait_for.removeprefix("event:"), "waits for"))
    for c in checkpoints:
        if c.kind == "event":
            names.append((c.name.split("#", 1)[0], "waited for"))
        elif c.kind == "emit":
            names.append((c.name.split("#", 1)[0].removeprefix("$emit:"), "emitted"))
    rows = []
    for name, how in dict.fromkeys(names):
        event = await store.get_event(name)
        rows.append(
            {
                "name": name,
                "how": how,
                "emitted": when(event.emitted_at) if event else "",
                "payload": short(event.payload, 120) if event else "",
            }
        )
    return rows


async def detail(store: Store, job: JobRecord) -> Detail:
    """Gather the page of one job."""
    checkpoints = await store.checkpoints(job.id)
    dependencies = [Dependency(i, await store.get(i)) for i in job.depends_on]
    parent = None if job.parent_id is None else await store.get(job.parent_id)
    return Detail(
        job=job,
        attempts=tuple(await store.attempts(job.id)),
        steps=tuple(timeline(checkpoints)),
        children=await tree(store, job),
        dependencies=tuple(dependencies),
        events=tuple(await _events(store, job, checkpoints)),
        parent=parent,
    )


ACTIONS: dict[str, frozenset[JobState]] = {
    "cancel": frozenset(s for s in JobState if not s.terminal),
    "pause": frozenset(s for s in JobState if not s.terminal and s is not JobState.PAUSED),
    "resume": frozenset({JobState.PAUSED}),
    "retry": frozenset(
        {JobState.FAILED, JobState.CANCELLED, JobState.EXPIRED, JobState.DEPENDENCY_FAILED}
    ),
}
"""The actions of the job page, and the states in which each is offered."""


def actions_for(job: JobRecord) -> list[str]:
    """The actions that apply to `job` in its state, in button order."""
    return [name for name, states in ACTIONS.items() if job.state in states]


def describe_schedule(schedule: ScheduleRecord) -> str:
    """When a schedule fires, in words, or its stored spec if it cannot be read."""
    from wireframe.scheduler.errors import ConfigError
    from wireframe.scheduler.recurring import recurrence_from_json

    try:
        data = json.loads(schedule.spec)
        data["overlap"] = str(Overlap.SKIP)
        return recurrence_from_json(data).describe()
    except (ValueError, TypeError, ConfigError):
        return schedule.spec


def parse_query(args: dict[str, str | None], limit: int) -> JobQuery:
    """A `JobQuery` from the jobs page's query string (ValueError naming a bad value)."""
    states: list[JobState] = []
    for part in (args.get("state") or "").split(","):
        if part.strip():
            try:
                states.append(JobState(part.strip()))
            except ValueError:
                raise ValueError(f"state={part.strip()!r} is not a job state") from None

    def cursor(name: str) -> int | None:
        raw = args.get(name)
        if not raw:
            return None
        if not raw.isdigit():
            raise ValueError(f"{name}={raw!r} must be a job id")
        return int(raw)

    return JobQuery(
        states=tuple(states),
        domain=args.get("domain") or None,
        type=args.get("type") or None,
        tag=args.get("tag") or None,
        text=args.get("q") or None,
        before=cursor("before"),
        after=cursor("after"),
        limit=limit,
    )
