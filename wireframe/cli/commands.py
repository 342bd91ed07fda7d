"""The inspection, control and maintenance commands; each talks to the Store protocol only.

They need no handler code: a job's payload, result and history are rows. Long-running
commands (`run`, `worker`) are in `wireframe.cli.running`; the live view is in `top`.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from wireframe.cli import render
from wireframe.cli.errors import CLIError, UsageError
from wireframe.cli.values import (
    parse_duration,
    parse_job_id,
    parse_positive_int,
    parse_states,
)
from wireframe.store import (
    InvalidTransitionError,
    JobRecord,
    JobState,
    PostgresStore,
    Store,
    StoreError,
    StoreURLError,
    UnknownJobError,
    store_from_url,
)

STORE_ENV = "WIREFRAME_STORE"
"""Environment variable read when ``--store`` is not given."""


class Output:
    """Where a command writes: JSON on stdout with ``--json``, rich renderables otherwise."""

    def __init__(self, as_json: bool, console: Console | None = None) -> None:
        self.as_json = as_json
        self.console = console or Console(highlight=False, soft_wrap=False)

    def json(self, data: object) -> None:
        """Write one JSON document on stdout."""
        print(json.dumps(data, indent=2, default=str))

    def print(self, *renderables: RenderableType) -> None:
        """Print rich renderables."""
        self.console.print(*renderables)


def store_url(args: argparse.Namespace) -> str:
    """The store URL from ``--store`` or ``$WIREFRAME_STORE``."""
    url: str | None = getattr(args, "store", None) or os.environ.get(STORE_ENV)
    if not url:
        raise UsageError(f"no store given: pass --store URL or set {STORE_ENV}")
    return url


def make_store(url: str, *, reconnect_timeout: float | None = None) -> Store:
    """Build the store a URL names; a bad URL is a usage error.

    `reconnect_timeout` (``--reconnect-timeout``) applies to PostgreSQL stores only.
    """
    try:
        store = store_from_url(url)
    except StoreURLError as exc:
        raise UsageError(str(exc)) from None
    if reconnect_timeout is None:
        return store
    if not isinstance(store, PostgresStore):
        raise UsageError(f"--reconnect-timeout applies to PostgreSQL stores only, not {store.url}")
    return PostgresStore(url, reconnect_timeout=reconnect_timeout)


@asynccontextmanager
async def opened(args: argparse.Namespace) -> AsyncIterator[Store]:
    """The store of ``--store``, opened (which brings its schema up to date) and then closed."""
    store = make_store(store_url(args))
    await open_store(store)
    try:
        yield store
    finally:
        await store.close()


async def open_store(store: Store) -> None:
    """Open `store`; any failure is a CLIError: one line naming the store's URL once."""
    try:
        await store.open()
    except Exception as exc:  # any store's driver error (sqlite3, psycopg, OSError...)
        raise CLIError(f"cannot open store {store.url}: {store_detail(exc, store.url)}") from None


def store_detail(exc: BaseException, url: str) -> str:
    """What a store error says, without the store's URL in front (the caller names it)."""
    if not isinstance(exc, StoreError):
        return f"{type(exc).__name__}: {exc}"
    return str(exc).removeprefix(f"{url}: ")


async def get_job(store: Store, job_id: int) -> JobRecord:
    """The job, or a CLIError naming the id."""
    job = await store.get(job_id)
    if job is None:
        raise CLIError(f"no job with id {job_id} in {store.url}")
    return job


# -- jobs ------------------------------------------------------------------------------------


async def cmd_jobs(args: argparse.Namespace, out: Output) -> int:
    """List jobs as a table (or JSON), newest first."""
    states = parse_states(args.state)
    limit = parse_positive_int(args.limit, option="--limit")
    if args.type is not None and "::" not in args.type:
        raise UsageError(f"--type {args.type!r} must be written domain::name")
    async with opened(args) as store:
        jobs = await store.list_jobs(
            states=states,
            domain=args.domain,
            type=args.type,
            limit=limit,
            newest_first=not args.oldest_first,
        )
    if out.as_json:
        out.json([render.job_dict(j) for j in jobs])
        return 0
    if not jobs:
        out.print(Text("no jobs match", style="dim"))
        return 0
    out.print(render.jobs_table(jobs, title=f"{len(jobs)} job(s) in {store.url}"))
    return 0


# -- job ID ----------------------------------------------------------------------------------

Section = Callable[[Store, JobRecord], Awaitable[tuple[str, Any, RenderableType | None]]]
"""One part of `wireframe job ID`: (name, JSON data, renderable or None to leave it out)."""


async def _overview(store: Store, job: JobRecord) -> tuple[str, Any, RenderableType | None]:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    rows: list[tuple[str, RenderableType]] = [
        ("type", job.type),
        ("state", render.state_text(job.state)),
        ("priority", f"{job.priority} (base {job.base_priority})"),
        ("attempt", f"{job.attempt} of {job.max_attempts}"),
        ("created", render.when(job.created_at)),
        ("run at", render.when(job.run_at)),
        ("started", render.when(job.started_at)),
        ("finished", render.when(job.finished_at)),
        ("expires", render.when(job.expires_at)),
        ("worker", job.worker_id or ""),
        ("lease until", render.when(job.lease_expires_at)),
        ("key", job.key or ""),
        ("parent", "" if job.parent_id is None else str(job.parent_id)),
        ("tags", ", ".join(job.tags)),
        (
            "progress",
            ""
            if job.progress is None
            else f"{job.progress:.0%} {job.progress_message or ''}".strip(),
        ),
        ("reason", job.reason or ""),
        ("waiting for", job.wait_for or ""),
        ("payload", json.dumps(render.decode(job.payload))),
        ("result", "" if job.result is None else json.dumps(render.decode(job.result))),
    ]
    for name, value in rows:
        if value != "":
            table.add_row(name, value)
    return "job", render.job_dict(job), Panel(table, title=f"job {job.id}", expand=False)


async def _error(store: Store, job: JobRecord) -> tuple[str, Any, RenderableType | None]:
    data = {"error": job.error, "traceback": job.traceback}
    if not job.error and not job.traceback:
        return "error", data, None
    parts: list[RenderableType] = [Text(job.error or "", style="bold red")]
    if job.traceback:
        parts.append(Text(job.traceback.rstrip(), style="red"))
    return "error", data, Panel(Group(*parts), title="error", expand=False)


async def _attempts(store: Store, job: JobRecord) -> tuple[str, Any, RenderableType | None]:
    attempts = await store.attempts(job.id)
    if not attempts:
        return "attempts", [], None
    table = Table()
    for name in ("#", "worker", "started", "took", "outcome", "error"):
        table.add_column(name)
    for a in attempts:
        took = "" if a.finished_at is None else render.seconds(a.finished_at - a.started_at)
        table.add_row(
            str(a.attempt),
            a.worker_id or "",
            render.when(a.started_at),
            took,
            a.outcome or "running",
            render.short(a.error, 80),
        )
    return "attempts", [render.attempt_dict(a) for a in attempts], titled("attempts", table)


async def _dependencies(store: Store, job: JobRecord) -> tuple[str, Any, RenderableType | None]:
    rows: list[dict[str, Any]] = []
    for dep_id in job.depends_on:
        dep = await store.get(dep_id)
        rows.append(
            {
                "id": dep_id,
                "type": dep.type if dep else None,
                "state": dep.state.value if dep else "missing",
                "outstanding": dep is None or dep.state is not JobState.COMPLETED,
            }
        )
    outstanding = [r for r in rows if r["outstanding"]]
    if not rows:
        return "dependencies", [], None
    table = Table()
    for name in ("id", "type", "state"):
        table.add_column(name)
    for r in rows:
        style = "bold" if r["outstanding"] else "dim"
        table.add_row(str(r["id"]), str(r["type"] or "?"), Text(str(r["state"]), style=style))
    title = f"dependencies ({len(outstanding)} of {len(rows)} outstanding)"
    return "dependencies", rows, titled(title, table)


CHILDREN_SHOWN = 50


def titled(title: str, body: RenderableType) -> RenderableType:
    """A section: a bold title line (never wrapped to the table's width) above its body."""
    return Group(Text(title, style="bold"), body)


async def _children(store: Store, job: JobRecord) -> tuple[str, Any, RenderableType | None]:
    children = await store.list_jobs(parent_id=job.id, limit=CHILDREN_SHOWN)
    if not children:
        return "children", [], None
    title = f"children (active: {job.active_children}; first {len(children)} shown)"
    data = [
        {"id": c.id, "type": c.type, "state": c.state.value, "error": c.error} for c in children
    ]
    return "children", data, titled(title, render.jobs_table(children))


async def _checkpoints(store: Store, job: JobRecord) -> tuple[str, Any, RenderableType | None]:
    checkpoints = await store.checkpoints(job.id)
    if not checkpoints:
        return "checkpoints", [], None
    table = Table()
    for name in ("seq", "name", "kind", "value", "at"):
        table.add_column(name)
    for c in checkpoints:
        table.add_row(
            str(c.seq), c.name, c.kind, render.short(c.value, 60), render.when(c.created_at)
        )
    return (
        "checkpoints",
        [render.checkpoint_dict(c) for c in checkpoints],
        titled("checkpoints", table),
    )


async def _events(store: Store, job: JobRecord) -> tuple[str, Any, RenderableType | None]:
    """The event a suspended job waits for, and whether it was emitted."""
    if not job.wait_for or not job.wait_for.startswith("event:"):
        return "events", [], None
    name = job.wait_for.removeprefix("event:")
    event = await store.get_event(name)
    data = [
        {
            "name": name,
            "emitted": event is not None,
            "payload": None if event is None else render.decode(event.payload),
            "emitted_at": None if event is None else event.emitted_at,
        }
    ]
    status = "not emitted yet" if event is None else f"emitted {render.when(event.emitted_at)}"
    return "events", data, Text(f"waits for event {name!r}: {status}")


JOB_SECTIONS: list[Section] = [
    _overview,
    _error,
    _attempts,
    _dependencies,
    _children,
    _checkpoints,
    _events,
]
"""The parts of `wireframe job ID`, in order; a new section is one more function here."""


async def cmd_job(args: argparse.Namespace, out: Output) -> int:
    """Show one job: overview, error and traceback, attempts, dependencies, children, more."""
    job_id = parse_job_id(args.id)
    async with opened(args) as store:
        job = await get_job(store, job_id)
        sections = [await section(store, job) for section in JOB_SECTIONS]
    if out.as_json:
        data = {name: value for name, value, _ in sections}
        out.json({**data.pop("job"), **data})
        return 0
    for _, _, renderable in sections:
        if renderable is not None:
            out.print(renderable)
    return 0


# -- control ---------------------------------------------------------------------------------


async def cmd_control(args: argparse.Namespace, out: Output) -> int:
    """cancel, pause, resume or retry one job (and, for the first three, its descendants)."""
    action: str = args.command
    job_id = parse_job_id(args.id)
    async with opened(args) as store:
        await get_job(store, job_id)
        try:
            if action == "cancel":
                state = await store.cancel(job_id, "cancelled from the command line")
                detail: dict[str, Any] = {"state": state.value}
                message = (
                    f"job {job_id}: cancel requested (it is running)"
                    if state is JobState.RUNNING
                    else f"job {job_id}: {state.value}"
                )
            elif action == "pause":
                count = await store.pause(job_id)
                detail = {"paused": count}
                message = f"job {job_id}: {count} job(s) paused or asked to pause"
            elif action == "resume":
                count = await store.resume(job_id)
                detail = {"resumed": count}
                message = f"job {job_id}: {count} job(s) resumed"
            else:
                await store.retry(job_id)
                detail = {}
                message = f"job {job_id}: queued to run again"
        except UnknownJobError as exc:
            raise CLIError(str(exc)) from None
        except (InvalidTransitionError, StoreError) as exc:
            raise CLIError(f"cannot {action} job {job_id}: {exc}") from None
        job = await get_job(store, job_id)
    if out.as_json:
        out.json({"id": job_id, "action": action, **detail, "job_state": job.state.value})
    else:
        out.print(Text(message, style="green"))
    return 0


# -- maintenance -----------------------------------------------------------------------------


async def cmd_migrate(args: argparse.Namespace, out: Output) -> int:
    """Create or upgrade the store's schema (opening a store migrates it)."""
    async with opened(args) as store:
        url = store.url
    if out.as_json:
        out.json({"store": url, "migrated": True})
    else:
        out.print(Text(f"store {url}: schema is up to date", style="green"))
    return 0


async def cmd_purge(args: argparse.Namespace, out: Output) -> int:
    """Delete ended jobs that finished longer ago than ``--older-than``."""
    age = parse_duration(args.older_than, option="--older-than")
    before = time.time() - age
    async with opened(args) as store:
        deleted = await store.prune(before)
    if out.as_json:
        out.json({"deleted": deleted, "finished_before": before})
    else:
        out.print(
            Text(
                f"deleted {deleted} ended job(s) finished more than {render.seconds(age)} ago",
                style="green",
            )
        )
    return 0


def snapshot_counts(counts: dict[tuple[str, str, JobState], int]) -> dict[str, dict[str, int]]:
    """Store counts folded per domain and state (JSON-able)."""
    folded: dict[str, dict[str, int]] = {}
    for (domain, _type, state), n in counts.items():
        per = folded.setdefault(domain, {})
        per[state.value] = per.get(state.value, 0) + n
    return folded


__all__ = [
    "JOB_SECTIONS",
    "STORE_ENV",
    "Output",
    "cmd_control",
    "cmd_job",
    "cmd_jobs",
    "cmd_migrate",
    "cmd_purge",
    "open_store",
    "opened",
    "store_detail",
    "store_url",
]
