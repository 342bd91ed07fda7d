"""`wireframe dashboard`: serve the web dashboard of a store until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import importlib.util
from typing import Any, Literal, cast

import anyio
from rich.console import Console
from rich.text import Text

from wireframe.cli.commands import make_store, open_store, store_url
from wireframe.cli.errors import UsageError
from wireframe.cli.running import setup_logging
from wireframe.cli.values import parse_duration
from wireframe.service import Service, Task, TaskKind
from wireframe.service.stop import StopReceiver

Backend = Literal["asyncio", "trio"]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Register `wireframe dashboard` on the command's subparsers."""
    p = sub.add_parser(
        "dashboard",
        parents=parents,
        help="web dashboard of a store: jobs, workers, schedules, live plots",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", default="8321", metavar="PORT", help="port (0: any free port)")
    p.add_argument(
        "--token",
        help="allow cancel/retry/pause/resume for browsers that give this token "
        "(or $WIREFRAME_DASHBOARD_TOKEN); without one the dashboard is read-only",
    )
    p.add_argument(
        "--interval", default="2s", metavar="DURATION", help="how often the store is sampled"
    )


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise UsageError(f"--port {text!r} must be a whole number from 0 to 65535")
    return int(text)


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard of ``--store``; print where, and whether actions are allowed."""
    if importlib.util.find_spec("jinja2") is None:
        raise UsageError("the dashboard needs Jinja2: pip install 'wireframe[dashboard]'")
    from wireframe.dashboard import DashboardServer

    url = store_url(args)
    port = _port(args.port)
    interval = parse_duration(args.interval, option="--interval")
    if interval <= 0:
        raise UsageError(f"--interval {args.interval!r} must be more than zero")
    store = make_store(url, create=False)
    anyio.run(_check, store, backend=args.backend)
    try:
        server = DashboardServer(
            url, host=args.host, port=port, token=args.token, interval=interval
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    service = Service(name="dashboard")
    service.add_task(server)

    async def announce(stop: StopReceiver) -> None:
        bound = await server.started()
        mode = (
            Text("read-only (no --token)", style="yellow")
            if server.read_only
            else Text("actions need the token", style="green")
        )
        line = Text.assemble(
            ("wireframe dashboard ", "bold"),
            ("of ", ""),
            (server.store.url, "cyan"),
            (" on ", ""),
            (server.url.rsplit(":", 1)[0] + f":{bound}", "bold underline"),
            ("  ", ""),
            mode,
        )
        Console(highlight=False, soft_wrap=True).print(line)

    service.add_task(Task.from_fn("announce", announce, TaskKind.UNCONSTRAINED_ONESHOT))
    level = setup_logging(args)
    return service.run_sync(backend=cast(Backend, args.backend), log_level=level)


async def _check(store: Any) -> None:
    """Open and close the store once: a store that cannot be opened is one line, exit 1."""
    await open_store(store)
    await store.close()
