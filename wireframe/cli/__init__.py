"""The `wireframe` command: run services and workers, inspect and control jobs, watch a store.

Errors are one line on stderr without a traceback: exit code 2 for usage errors (bad options,
URL, id, payload, duration, app path), 1 for failures (unknown job, refused transition, a store
that cannot be opened). Set WIREFRAME_DEBUG=1 to get tracebacks of unexpected errors.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import NoReturn

import anyio

from wireframe import __version__
from wireframe.cli.commands import (
    STORE_ENV,
    Output,
    cmd_control,
    cmd_job,
    cmd_jobs,
    cmd_migrate,
    cmd_purge,
    cmd_workers,
)
from wireframe.cli.dashboard import add_parser as add_dashboard_parser
from wireframe.cli.dashboard import cmd_dashboard
from wireframe.cli.errors import CLIError, UsageError
from wireframe.cli.flows import add_parsers as add_flow_parsers
from wireframe.cli.flows import cmd_pause_flow, cmd_paused
from wireframe.cli.running import cmd_run, cmd_worker
from wireframe.cli.schedules import cmd_schedules
from wireframe.cli.submit import add_parsers as add_submit_parsers
from wireframe.cli.submit import cmd_submit, cmd_types
from wireframe.cli.top import cmd_top
from wireframe.store import StoreError, StoreURLError

__all__ = ["CLIError", "UsageError", "build_parser", "main"]

PROG = "wireframe"

AsyncCommand = Callable[[argparse.Namespace, Output], Awaitable[int]]


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are UsageErrors (one line, exit code 2)."""

    def error(self, message: str) -> NoReturn:
        """Raise instead of printing the usage and exiting."""
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `wireframe` command."""
    store = _Parser(add_help=False)
    store.add_argument(
        "--store",
        metavar="URL",
        help=f"store URL: sqlite:///path.db, a bare path, postgresql://... (or ${STORE_ENV})",
    )
    as_json = _Parser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="print JSON instead of tables")
    logs = _Parser(add_help=False)
    logs.add_argument(
        "--log-format",
        choices=("auto", "rich", "json"),
        default="auto",
        help="rich console output, JSON lines, or auto: rich on a TTY, JSON otherwise",
    )
    logs.add_argument("--log-level", default="info", help="debug, info, warning or error")
    logs.add_argument("--backend", choices=("asyncio", "trio"), default="asyncio")

    parser = _Parser(prog=PROG, description="Run wireframe services and workers; inspect jobs.")
    parser.add_argument(
        "--version",
        action="version",
        version=f"{PROG} {__version__} (Python {platform.python_version()})",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_Parser
    )

    stopping = _Parser(add_help=False)
    stopping.add_argument(
        "--stop-delay",
        metavar="SECONDS",
        help="once a stop is requested, serve this long (not ready) before tasks stop",
    )

    p = sub.add_parser(
        "run", parents=[logs, stopping], help="run a Service (module:attr or main.py)"
    )
    p.add_argument("target", metavar="module:service|path/to/main.py")
    p.add_argument(
        "--graceful-timeout",
        metavar="SECONDS",
        help="seconds tasks get to return after stop (default: the service's own)",
    )
    p.add_argument(
        "--health-port",
        type=int,
        metavar="PORT",
        help="serve /health, /ready and /metrics on this port (0: any free port)",
    )
    p.add_argument("--health-host", default="127.0.0.1")

    p = sub.add_parser(
        "worker", parents=[store, logs, stopping], help="run jobs of an app's domains"
    )
    p.add_argument(
        "--app",
        required=True,
        metavar="module:attr",
        help="a Scheduler, Worker, Domain or list of Domains",
    )
    p.add_argument("--concurrency", metavar="N", help="jobs run at once (max_concurrency)")
    p.add_argument("--tags", metavar="a,b", help="this worker's tags")
    p.add_argument("--worker-id", help="default: hostname-pid")
    p.add_argument("--name", default="worker", help="the service name (in logs)")
    p.add_argument(
        "--graceful-timeout", default="30s", metavar="DURATION", help="bounds the whole stop"
    )
    p.add_argument(
        "--health-port",
        type=int,
        metavar="PORT",
        help="serve /health, /ready and /metrics on this port",
    )
    p.add_argument("--health-host", default="127.0.0.1")
    p.add_argument(
        "--reconnect-timeout",
        metavar="SECONDS",
        help="PostgreSQL: how long store operations retry while the server is unreachable "
        "before the worker fails (default 120; or ?reconnect_timeout= in the URL)",
    )

    p = sub.add_parser("jobs", parents=[store, as_json], help="list jobs")
    p.add_argument(
        "--state",
        action="append",
        metavar="STATE",
        help="filter by state (repeat or comma-separate)",
    )
    p.add_argument("--domain")
    p.add_argument("--type", metavar="DOMAIN::NAME")
    p.add_argument("--limit", default="50")
    p.add_argument("--oldest-first", action="store_true")

    p = sub.add_parser("job", parents=[store, as_json], help="show one job in detail")
    p.add_argument("id")

    for action, text in (
        ("cancel", "cancel a job and its descendants"),
        ("retry", "run an ended, unsuccessful job again"),
        ("pause", "pause a job and its descendants"),
        ("resume", "resume a paused job and its descendants"),
    ):
        p = sub.add_parser(action, parents=[store, as_json], help=text)
        p.add_argument("ids", nargs="*", metavar="ID", help="job ids (or use a filter)")
        p.add_argument(
            "--state",
            action="append",
            metavar="STATE",
            help="every job in this state (repeat or comma-separate); with a filter and no "
            f"--state: the states {action} applies to",
        )
        p.add_argument("--domain", help="every job of this domain")
        p.add_argument("--type", metavar="DOMAIN::NAME", help="every job of this type")

    add_submit_parsers(sub, [store, as_json])
    add_flow_parsers(sub, [store, as_json])

    p = sub.add_parser(
        "schedules", parents=[store, as_json], help="list recurring schedules and skipped firings"
    )
    p.add_argument(
        "--state",
        action="append",
        choices=("active", "paused", "cancelled", "finished"),
        help="only schedules in this state (repeat for several)",
    )

    p = sub.add_parser("top", parents=[store, as_json], help="live view of a store")
    p.add_argument("--interval", default="1s", metavar="DURATION")
    p.add_argument("--once", action="store_true", help="print one frame and exit")
    p.add_argument("--iterations", type=int, metavar="N", help="stop after N refreshes")

    sub.add_parser(
        "workers",
        parents=[store, as_json],
        help="the live workers (and those lost within the hour): host, tags, jobs held",
    )

    add_dashboard_parser(sub, [store, logs])

    sub.add_parser("migrate", parents=[store, as_json], help="create or upgrade the schema")

    p = sub.add_parser("purge", parents=[store, as_json], help="delete old ended jobs")
    p.add_argument("--older-than", required=True, metavar="DURATION", help="e.g. 7d, 12h")
    p.add_argument(
        "--state", action="append", metavar="STATE", help="only ended jobs in this state"
    )
    p.add_argument("--domain", help="only jobs of this domain")
    p.add_argument(
        "--dry-run", action="store_true", help="count what would be deleted; delete nothing"
    )
    return parser


ASYNC_COMMANDS: dict[str, AsyncCommand] = {
    "jobs": cmd_jobs,
    "job": cmd_job,
    "cancel": cmd_control,
    "retry": cmd_control,
    "pause": cmd_control,
    "resume": cmd_control,
    "pause-domain": cmd_pause_flow,
    "resume-domain": cmd_pause_flow,
    "pause-type": cmd_pause_flow,
    "resume-type": cmd_pause_flow,
    "paused": cmd_paused,
    "submit": cmd_submit,
    "types": cmd_types,
    "schedules": cmd_schedules,
    "top": cmd_top,
    "workers": cmd_workers,
    "migrate": cmd_migrate,
    "purge": cmd_purge,
}


def _fail(message: str, code: int) -> int:
    text = one_line(message)
    print(f"{PROG}: error: {text}", file=sys.stderr)
    return code


def one_line(message: str) -> str:
    """An error message on one line, a prefix said twice in a row said once: ``submit a::b:
    submit a::b: depends_on: ...`` (a caller's context around a store's own) loses the echo."""
    parts = " ".join(message.split()).split(": ")
    kept = [part for i, part in enumerate(parts) if i == 0 or part != parts[i - 1]]
    return ": ".join(kept)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `wireframe` command; returns the process exit code."""
    command = None
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:  # --help and --version print, then exit
            return exc.code if isinstance(exc.code, int) else 0
        command = args.command
        if command == "run":
            return cmd_run(args)
        if command == "worker":
            return cmd_worker(args)
        if command == "dashboard":
            return cmd_dashboard(args)
        out = Output(as_json=args.json)
        return anyio.run(ASYNC_COMMANDS[command], args, out)
    except CLIError as exc:
        return _fail(str(exc), exc.exit_code)
    except StoreURLError as exc:
        return _fail(str(exc), 2)
    except BrokenPipeError:  # the reader went away (`wireframe jobs | head`): stop quietly
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 1
    except KeyboardInterrupt:
        return 0 if command == "top" else 130
    except StoreError as exc:  # it names the store and what went wrong
        if os.environ.get("WIREFRAME_DEBUG"):
            raise
        return _fail(str(exc), 1)
    except (sqlite3.Error, OSError) as exc:
        if os.environ.get("WIREFRAME_DEBUG"):
            raise
        return _fail(f"{type(exc).__name__}: {exc}", 1)
    except Exception as exc:
        if os.environ.get("WIREFRAME_DEBUG"):
            raise
        return _fail(f"{type(exc).__name__}: {exc} (WIREFRAME_DEBUG=1 shows the traceback)", 1)
