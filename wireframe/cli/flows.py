"""`wireframe pause-domain`, `resume-domain`, `pause-type`, `resume-type` and `paused`, and why a
pending job of a paused domain or type waits (shown by `jobs`, `job` and `top`).

A paused domain or job type starts no job in any worker until it is resumed; jobs already
running finish. This is not `wireframe pause --domain D`, which pauses every job of the domain
one by one (a running one stops and waits, paused).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any

from rich.table import Table
from rich.text import Text

from wireframe.cli import render
from wireframe.cli.commands import Output, opened
from wireframe.cli.errors import UsageError
from wireframe.cli.pauses import flow_dict
from wireframe.scheduler._pauses import flow_name
from wireframe.scheduler.errors import ConfigError
from wireframe.store import FlowKind

COMMANDS: Mapping[str, tuple[FlowKind, bool]] = {
    "pause-domain": ("domain", True),
    "resume-domain": ("domain", False),
    "pause-type": ("type", True),
    "resume-type": ("type", False),
}
"""Each command's kind of flow, and whether it pauses (else resumes)."""


def add_parsers(
    sub: argparse._SubParsersAction[Any], parents: Sequence[argparse.ArgumentParser]
) -> None:
    """Add the pause/resume commands and `paused` (`parents`: ``--store`` and ``--json``)."""
    for command, (kind, pausing) in COMMANDS.items():
        what = "domains" if kind == "domain" else "job types"
        text = (
            f"start no more jobs of these {what} in any worker (running ones finish)"
            if pausing
            else f"let the jobs of these paused {what} start again"
        )
        p = sub.add_parser(command, parents=list(parents), help=text, description=text)
        metavar = "DOMAIN" if kind == "domain" else "DOMAIN::NAME"
        p.add_argument("names", nargs="+", metavar=metavar)
    sub.add_parser("paused", parents=list(parents), help="list the paused domains and job types")


async def cmd_pause_flow(args: argparse.Namespace, out: Output) -> int:
    """Pause or resume domains or job types: a line each (or JSON), exit 0."""
    kind, pausing = COMMANDS[args.command]
    try:
        names = [flow_name(kind, name, args.command) for name in args.names]
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    results: list[dict[str, Any]] = []
    async with opened(args) as store:
        for name in dict.fromkeys(names):
            changed = await store.set_paused(kind, name, pausing)
            results.append({"kind": kind, "name": name, "paused": pausing, "changed": changed})
    if out.as_json:
        out.json(results)
        return 0
    for r in results:
        label = f"{'domain' if kind == 'domain' else 'job type'} {r['name']}"
        if pausing:
            text = (
                "paused: running jobs finish, no new job starts"
                if r["changed"]
                else ("was already paused")
            )
        else:
            text = "resumed" if r["changed"] else "was not paused"
        out.print(Text(f"{label}: {text}", style="green" if r["changed"] else "yellow"))
    return 0


async def cmd_paused(args: argparse.Namespace, out: Output) -> int:
    """List the paused domains and job types."""
    async with opened(args) as store:
        flows = await store.paused()
    if out.as_json:
        out.json([flow_dict(f) for f in flows])
        return 0
    if not flows:
        out.print(Text("nothing is paused", style="dim"))
        return 0
    table = Table(title=f"paused in {store.url}", title_justify="left")
    for name in ("kind", "name", "since"):
        table.add_column(name, no_wrap=True)
    for flow in flows:
        table.add_row(flow.kind, flow.name, render.when(flow.paused_at))
    out.print(table)
    return 0
