"""The inspection, control and maintenance commands; each talks to the Store protocol only.

They need no handler code: a job's payload, result and history are rows. Long-running
commands (`run`, `worker`) are in `wireframe.cli.running`; the live view is in `top`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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
from wireframe.cli.key_waits import with_key_waits
from wireframe.cli.pauses import held_by_pause, held_by_pauses, waits
from wireframe.cli.values import (
    parse_duration,
    parse_job_id,
    parse_positive_int,
    parse_states,
)
from wireframe.cli.workers import can_take, why_waiting, worker_dict, workers_table
from wireframe.store import (
    ACTIVE_STATES,
    TERMINAL_STATES,
    JobRecord,
    JobState,
    NoStoreError,
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


def make_store(url: str, *, create: bool = True, reconnect_timeout: float | None = None) -> Store:
    """Build the store a URL names; a bad URL is a usage error.

    `create=False`: opening it fails with "no store at ..." where there is none yet, instead of
    creating it. `reconnect_timeout` (``--reconnect-timeout``) applies to PostgreSQL stores only.
    """
    try:
        store = store_from_url(url, create=create)
    except StoreURLError as exc:
        raise UsageError(str(exc)) from None
    if reconnect_timeout is None:
        return store
    if not isinstance(store, PostgresStore):
        raise UsageError(f"--reconnect-timeout applies to PostgreSQL stores only, not {store.url}")
    return PostgresStore(url, reconnect_timeout=reconnect_timeout, create=create)


@asynccontextmanager
async def opened(args: argparse.Namespace, *, create: bool = False) -> AsyncIterator[Store]:
    """The store of ``--store``, opened (which brings its schema up to date) and then closed.

    Only `migrate` creates a store (`create=True`); every other command fails with "no store
    at ..." (exit 1) where there is none, rather than leaving an empty one behind.
    """
    store = make_store(store_url(args), create=create)
    await open_store(store)
    try:
        yield store
    finally:
        await store.close()


async def open_store(store: Store) -> None:
    """Open `store`; any failure is a CLIError: one line naming the store's URL once."""
    try:
        await store.open()
    except NoStoreError as exc:
        raise CLIError(str(exc)) from None
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
    """List jobs as a table (or JSON), newest first; a footer says when ``--limit`` cut it."""
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
        jobs = await with_key_waits(store, jobs)
        held = held_by_pauses(jobs, await store.paused())
        total = len(jobs)
        if total == limit:
            total = sum(
                n
                for (domain, job_type, state), n in (await store.counts()).items()
                if (not states or state in states)
                and (args.domain is None or domain == args.domain)
                and (args.type is None or job_type == args.type)
            )
    if out.as_json:
        out.json([render.job_dict(j) | waits(held, j.id) for j in jobs])
        return 0
    if not jobs:
        out.print(Text("no jobs match", style="dim"))
        return 0
    cut = total > len(jobs)
    caption = f"showing {len(jobs)} of {total}; --limit N shows more" if cut else None
    title = f"{total} job(s) in {store.url}"
    out.print(render.jobs_table(jobs, title=title, caption=caption, notes=held))
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
        ("priority", render.priority_detail(job)),
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
        ("meta", ", ".join(f"{name}={value}" for name, value in sorted(job.meta.items()))),
        (
            "progress",
            ""
            if job.progress is None
            else f"{job.progress:.0%} {job.progress_message or ''}".strip(),
        ),
        ("reason", render.reason(job)),
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


async def _workers(store: Store, job: JobRecord) -> tuple[str, Any, RenderableType | None]:
    """For a pending job: the live workers that may take it, or why none can."""
    if job.state is not JobState.PENDING:
        return "workers", None, None
    workers = await store.workers()
    why = held_by_pause(job, await store.paused()) or why_waiting(job, workers)
    able = [w.info.worker_id for w in workers if can_take(w, job)]
    data = {"can_take": able, "why_not": why}
    if why is not None:
        return "workers", data, Text(f"waits: {why}", style="bold yellow")
    return "workers", data, Text(f"live workers that can take it: {', '.join(able)}", style="dim")


JOB_SECTIONS: list[Section] = [
    _overview,
    _workers,
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
        [job] = await with_key_waits(store, [await get_job(store, job_id)])
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

FILTER_STATES: dict[str, tuple[JobState, ...]] = {
    "cancel": tuple(s for s in JobState if s in ACTIVE_STATES),
    "pause": tuple(s for s in JobState if s in ACTIVE_STATES and s is not JobState.PAUSED),
    "resume": (JobState.PAUSED,),
    "retry": (
        JobState.FAILED,
        JobState.CANCELLED,
        JobState.EXPIRED,
        JobState.DEPENDENCY_FAILED,
    ),
}
"""The states a filter (``--domain``, ``--type``) selects for each action without ``--state``."""

PAGE = 1000


def reason(exc: BaseException, action: str, job_id: int) -> str:
    """Why a store refused `action` on a job, without the operation and job it repeats:
    ``retry: job 1 is completed`` becomes ``it is completed``."""
    text = str(exc)
    for prefix in (f"{action}: ", f"job {job_id} "):
        if text.startswith(prefix):
            text = text.removeprefix(prefix)
            if prefix.startswith("job"):
                text = f"it {text}"
    return text


async def _selected(store: Store, args: argparse.Namespace, action: str) -> list[int]:
    """The job ids an action applies to: the ids given, or the jobs the filter matches."""
    ids = [parse_job_id(text) for text in args.ids]
    filtered = bool(args.state or args.domain or args.type)
    if ids and filtered:
        raise UsageError(
            f"{action}: give job ids or a filter (--state, --domain, --type), not both"
        )
    if not ids and not filtered:
        raise UsageError(
            f"{action}: give job ids, or a filter such as --state failed --domain media"
        )
    if ids:
        return list(dict.fromkeys(ids))
    states = parse_states(args.state) or FILTER_STATES[action]
    if args.type is not None and "::" not in args.type:
        raise UsageError(f"--type {args.type!r} must be written domain::name")
    found: list[int] = []
    while True:
        page = await store.list_jobs(
            states=states, domain=args.domain, type=args.type, limit=PAGE, offset=len(found)
        )
        found += [job.id for job in page]
        if len(page) < PAGE:
            return found


async def _act(store: Store, action: str, job_id: int) -> tuple[dict[str, Any], str]:
    """Apply `action` to one job: (JSON detail, message); a CLIError says why it was refused."""
    try:
        if action == "cancel":
            state = await store.cancel(job_id, "cancelled from the command line")
            detail: dict[str, Any] = {"state": state.value}
            message = (
                "cancel requested (it is running)" if state is JobState.RUNNING else state.value
            )
        elif action == "pause":
            count = await store.pause(job_id)
            detail = {"paused": count}
            message = f"{count} job(s) paused or asked to pause"
        elif action == "resume":
            count = await store.resume(job_id)
            detail = {"resumed": count}
            message = f"{count} job(s) resumed"
        else:
            await store.retry(job_id)
            detail = {}
            message = "queued to run again"
    except UnknownJobError:
        raise CLIError(f"no job with id {job_id} in {store.url}") from None
    except StoreError as exc:
        raise CLIError(f"cannot {action} job {job_id}: {reason(exc, action, job_id)}") from None
    return detail, message


async def cmd_control(args: argparse.Namespace, out: Output) -> int:
    """cancel, pause, resume or retry jobs (and, for the first three, their descendants).

    One id: one line, or one error (exit 1). Several ids, or a filter: a line per job (refusals
    on stderr), then a summary; exit 1 if any job was refused.
    """
    action: str = args.command
    single = len(args.ids) == 1 and not (args.state or args.domain or args.type)
    results: list[dict[str, Any]] = []
    failed = 0
    async with opened(args) as store:
        ids = await _selected(store, args, action)
        for job_id in ids:
            try:
                detail, message = await _act(store, action, job_id)
            except CLIError as exc:
                if single:
                    raise
                failed += 1
                results.append({"id": job_id, "ok": False, "error": str(exc)})
                if not out.as_json:
                    print(f"wireframe: error: {exc}", file=sys.stderr)
                continue
            job = await store.get(job_id)
            state = None if job is None else job.state.value
            results.append({"id": job_id, "ok": True, **detail, "job_state": state})
            if not out.as_json:
                out.print(Text(f"job {job_id}: {message}", style="green"))
    if single:
        (result,) = results
        result.pop("ok")
        if out.as_json:
            out.json({"id": result.pop("id"), "action": action, **result})
        return 0
    done = len(results) - failed
    if out.as_json:
        out.json({"action": action, "jobs": results, "done": done, "failed": failed})
    elif not results:
        out.print(Text("no jobs match", style="dim"))
    else:
        style = "yellow" if failed else "green"
        out.print(Text(f"{action}: {done} of {len(results)} job(s) done, {failed} refused", style))
    return 1 if failed else 0


# -- workers --------------------------------------------------------------------------------


async def cmd_workers(args: argparse.Namespace, out: Output) -> int:
    """List the workers recorded in the store: the live ones, then those lost within the last
    hour (no heartbeat within their claim ttl: crashed, or cut off from the store)."""
    async with opened(args) as store:
        workers = await store.workers()
    workers = [w for w in workers if not w.lost] + [w for w in workers if w.lost]
    if out.as_json:
        out.json([worker_dict(w) for w in workers])
        return 0
    if not workers:
        out.print(Text("no live workers", style="dim"))
        return 0
    live = sum(not w.lost for w in workers)
    lost = len(workers) - live
    title = f"{live} live worker(s) in {store.url}" + (f", {lost} lost" if lost else "")
    out.print(workers_table(workers, title=title))
    return 0


# -- maintenance -----------------------------------------------------------------------------


async def cmd_migrate(args: argparse.Namespace, out: Output) -> int:
    """Create or upgrade the store's schema (opening a store migrates it)."""
    async with opened(args, create=True) as store:
        url = store.url
    if out.as_json:
        out.json({"store": url, "migrated": True})
    else:
        out.print(Text(f"store {url}: schema is up to date", style="green"))
    return 0


async def cmd_purge(args: argparse.Namespace, out: Output) -> int:
    """Delete ended jobs that finished longer ago than ``--older-than`` (of ``--state`` and
    ``--domain`` if given); ``--dry-run`` counts them and deletes nothing."""
    age = parse_duration(args.older_than, option="--older-than")
    states = parse_states(args.state)
    active = [s.value for s in states if s not in TERMINAL_STATES]
    if active:
        raise UsageError(
            f"--state: purge deletes ended jobs only; {', '.join(active)} is not an end state"
        )
    before = time.time() - age
    async with opened(args) as store:
        count = await store.prune(before, states=states, domain=args.domain, dry_run=args.dry_run)
    if out.as_json:
        key = "would_delete" if args.dry_run else "deleted"
        out.json({key: count, "finished_before": before})
        return 0
    what = "/".join(s.value for s in states) or "ended"
    where = "" if args.domain is None else f" of domain {args.domain}"
    verb = "would delete" if args.dry_run else "deleted"
    out.print(
        Text(
            f"{verb} {count} {what} job(s){where} finished more than {render.seconds(age)} ago",
            style="yellow" if args.dry_run else "green",
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
    "cmd_workers",
    "open_store",
    "opened",
    "store_detail",
    "store_url",
]
