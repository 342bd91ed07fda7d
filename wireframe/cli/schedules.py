"""`wireframe schedules`: the recurring schedules of a store, with their skipped firings."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import attrs
from rich.table import Table
from rich.text import Text

from wireframe.cli import render
from wireframe.cli.commands import Output, opened
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.recurring import recurrence_from_json
from wireframe.store import Overlap, ScheduleRecord

STATE_STYLE = {"active": "green", "paused": "dim", "cancelled": "red", "finished": "blue"}


def describe(spec: str) -> str:
    """When the schedule fires, in words (``every 5 minutes``; its overlap policy has a column of
    its own), or its stored spec if it cannot be read."""
    try:
        data = json.loads(spec)
        data["overlap"] = str(Overlap.SKIP)  # the default, which `describe` leaves unsaid
        return recurrence_from_json(data).describe()
    except (ValueError, TypeError, ConfigError):
        return spec


def schedule_dict(schedule: ScheduleRecord) -> dict[str, Any]:
    """A schedule as JSON-able data, its spec decoded."""
    data = attrs.asdict(schedule, recurse=False)
    data["overlap"] = str(schedule.overlap)
    data["spec"] = render.decode(schedule.spec)
    return data


def schedules_table(schedules: list[ScheduleRecord], title: str) -> Table:
    """A table of schedules: what fires when, how often it ran and how often it was skipped."""
    now = time.time()
    table = Table(title=title)
    for name in ("id", "type", "fires", "state", "overlap", "next", "runs", "skipped", "last"):
        table.add_column(name, justify="right" if name in ("id", "runs", "skipped") else "left")
    for s in schedules:
        runs = (
            str(s.occurrences)
            if s.max_occurrences is None
            else f"{s.occurrences}/{s.max_occurrences}"
        )
        skipped = str(s.skipped)
        if s.last_skipped_at is not None:
            skipped += f" (last {render.ago(s.last_skipped_at, now)})"
        table.add_row(
            str(s.id),
            s.type,
            describe(s.spec),
            Text(s.state, style=STATE_STYLE.get(s.state, "")),
            str(s.overlap),
            "" if s.next_run_at is None else render.ago(s.next_run_at, now),
            runs,
            skipped,
            "" if s.last_job_id is None else f"job {s.last_job_id}",
        )
    return table


async def cmd_schedules(args: argparse.Namespace, out: Output) -> int:
    """List the recurring schedules (oldest first) as a table, or JSON."""
    async with opened(args) as store:
        schedules = await store.schedules()
    if args.state:
        schedules = [s for s in schedules if s.state in args.state]
    if out.as_json:
        out.json([schedule_dict(s) for s in schedules])
        return 0
    if not schedules:
        out.print(Text("no schedules", style="dim"))
        return 0
    out.print(schedules_table(schedules, f"{len(schedules)} schedule(s) in {store.url}"))
    return 0
