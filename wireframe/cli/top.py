"""`wireframe top`: a live view of a store that other processes are using.

Each refresh reads `counts()`, the running jobs and the rate limits (`rate_limits()`);
completions and failures per second are the differences between two successive `counts()`
divided by the time between them.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import sys
import time
from collections.abc import Mapping, Sequence

import anyio
import anyio.to_thread
import attrs
from rich.console import Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from wireframe.cli import render
from wireframe.cli.commands import Output, opened, snapshot_counts
from wireframe.cli.errors import UsageError
from wireframe.cli.key_waits import held_by_caps
from wireframe.cli.pauses import flow_dict, paused_text
from wireframe.cli.rate_view import rate_json, rate_table
from wireframe.cli.values import parse_duration
from wireframe.store import JobRecord, JobState, PausedFlow, Store
from wireframe.store.flowkeys import KeyStats
from wireframe.store.rates import RateState

try:
    import termios
    import tty
except ImportError:  # pragma: no cover - not a POSIX terminal (Windows)
    termios = None  # type: ignore[assignment]

KEY_POLL = 0.2
"""Seconds each wait for a key lasts before it looks again (the wait runs in a thread)."""

RUNNING_SHOWN = 20
"""At most this many running jobs get a progress bar; the rest are counted."""

QUEUE_STATES: tuple[JobState, ...] = (
    JobState.PENDING,
    JobState.SCHEDULED,
    JobState.BLOCKED,
    JobState.RUNNING,
    JobState.WAITING,
    JobState.SUSPENDED,
    JobState.PAUSED,
    JobState.COMPLETED,
    JobState.FAILED,
    JobState.CANCELLED,
)

ALWAYS_SHOWN = frozenset({JobState.PENDING, JobState.RUNNING, JobState.COMPLETED, JobState.FAILED})
"""Queue columns shown even when empty; the other states appear once a job is in them."""


@attrs.frozen
class Frame:
    """One reading of the store."""

    at: float
    counts: Mapping[tuple[str, str, JobState], int]
    running: Sequence[JobRecord]
    workers: int = 0
    """Live workers (a heartbeat within their ttl)."""
    rate_limits: Sequence[RateState] = ()
    """The rate limits claims applied, now."""
    paused: Sequence[PausedFlow] = ()
    """The paused domains and job types."""
    keys: Sequence[KeyStats] = ()
    """Concurrency keys per job type: jobs held by caps, the busiest key's running jobs."""

    def total(self, state: JobState) -> int:
        """Jobs in `state` across every domain and type."""
        return sum(n for (_d, _t, s), n in self.counts.items() if s is state)


@attrs.frozen
class Rates:
    """Completions and failures per second between two frames (None on the first frame)."""

    completed: float | None
    failed: float | None

    @classmethod
    def between(cls, previous: Frame | None, current: Frame) -> Rates:
        """Rates from two successive frames; a count that went down (pruned) counts as 0."""
        if previous is None or current.at <= previous.at:
            return cls(None, None)
        span = current.at - previous.at
        done = max(0, current.total(JobState.COMPLETED) - previous.total(JobState.COMPLETED))
        failed = max(0, current.total(JobState.FAILED) - previous.total(JobState.FAILED))
        return cls(done / span, failed / span)


async def read_frame(store: Store) -> Frame:
    """Counts and running jobs, now."""
    counts = await store.counts()
    running = await store.list_jobs(states=(JobState.RUNNING,), limit=RUNNING_SHOWN + 1)
    workers = sum(not w.lost for w in await store.workers())
    return Frame(
        time.monotonic(),
        counts,
        running,
        workers,
        rate_limits=await store.rate_limits(),
        paused=await store.paused(),
        keys=await store.key_stats(),
    )


def view(store_url: str, frame: Frame, rates: Rates, refresh: int) -> RenderableType:
    """The screen: a header with rates, queue depth per domain and state, running jobs."""

    def rate(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}/s"

    header = Text.assemble(
        ("wireframe top", "bold"),
        f"  {store_url}\n",
        f"refresh {refresh} at {time.strftime('%H:%M:%S')}  ",
        ("completed ", "green"),
        (rate(rates.completed), "bold green"),
        ("  failed ", "red"),
        (rate(rates.failed), "bold red"),
        f"  workers {frame.workers}",
    )
    if frame.paused:
        header.append(f"\n{paused_text(frame.paused)} (their pending jobs wait)", "bold yellow")
    by_domain = snapshot_counts(dict(frame.counts))
    present = {state for per in by_domain.values() for state in per}
    states = [s for s in QUEUE_STATES if s in ALWAYS_SHOWN or s.value in present]
    states += [s for s in JobState if s not in QUEUE_STATES and s.value in present]
    queue = Table(title="jobs by domain and state", title_justify="left")
    queue.add_column("domain", no_wrap=True)
    for state in states:
        queue.add_column(
            state.value, justify="right", style=render.STATE_STYLE.get(state, ""), no_wrap=True
        )
    for domain in sorted(by_domain):
        per = by_domain[domain]
        label = Text(domain)
        if any(f.kind == "domain" and f.name == domain for f in frame.paused):
            label.append(" (paused)", "bold yellow")
        queue.add_row(label, *(str(per.get(s.value, 0)) for s in states))
    if not by_domain:
        queue.add_row(Text("(no jobs)", style="dim"), *("" for _ in states))

    running = Table(title="running jobs", title_justify="left")
    for name in ("id", "type", "worker", "for", "progress", "", "message"):
        running.add_column(name, no_wrap=True)
    now = time.time()
    for job in frame.running[:RUNNING_SHOWN]:
        fraction = job.progress or 0.0
        running.add_row(
            str(job.id),
            job.type,
            job.worker_id or "",
            render.seconds(max(0.0, now - job.started_at)) if job.started_at else "",
            ProgressBar(total=1.0, completed=fraction, width=20),
            f"{fraction:.0%}" if job.progress is not None else "",
            render.short(job.progress_message, 40),
        )
    more = frame.total(JobState.RUNNING) - min(len(frame.running), RUNNING_SHOWN)
    if more > 0:
        running.add_row("", Text(f"... and {more} more", style="dim"), "", "", "", "", "")
    if not frame.running:
        running.add_row("", Text("(none)", style="dim"), "", "", "", "", "")
    parts: list[RenderableType] = [header, queue]
    if frame.rate_limits:
        parts.append(rate_table(frame.rate_limits))
    held = held_by_caps(frame.keys)
    if held is not None:
        parts.append(Text(held, style="yellow"))
    return Group(*parts, running)


async def cmd_top(args: argparse.Namespace, out: Output) -> int:
    """Refresh a live view every ``--interval`` until Ctrl-C or ``q`` (or ``--once``,
    ``--iterations``); ``--json`` prints one JSON object per refresh (JSON Lines)."""
    interval = parse_duration(args.interval, option="--interval")
    if interval <= 0:
        raise UsageError(f"--interval must be > 0, got {args.interval!r}")
    iterations = 1 if args.once else args.iterations
    if iterations is not None and iterations < 1:
        raise UsageError(f"--iterations must be >= 1, got {iterations}")
    async with opened(args) as store:
        if out.as_json:
            return await _json_frames(store, interval, iterations)
        if iterations == 1:
            frame = await read_frame(store)
            out.print(view(store.url, frame, Rates(None, None), 1))
            return 0
        async with anyio.create_task_group() as tg:
            keys = quit_keys()
            if keys is not None:
                tg.start_soon(_quit_on_q, keys, tg.cancel_scope)
            await _live(store, out, interval, iterations)
            tg.cancel_scope.cancel()
    return 0


async def _live(store: Store, out: Output, interval: float, iterations: int | None) -> None:
    previous: Frame | None = None
    refresh = 0
    with Live(console=out.console, auto_refresh=False, transient=False) as live:
        while True:
            frame = await read_frame(store)
            refresh += 1
            live.update(
                view(store.url, frame, Rates.between(previous, frame), refresh), refresh=True
            )
            if iterations is not None and refresh >= iterations:
                return
            previous = frame
            await anyio.sleep(interval)


def quit_keys() -> int | None:
    """The file descriptor of a terminal on stdin to read ``q`` from, or None (no TTY)."""
    try:
        fd = sys.stdin.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if termios is not None and os.isatty(fd) else None


async def _quit_on_q(fd: int, scope: anyio.CancelScope) -> None:
    """Cancel `scope` when ``q`` is typed; the terminal reads keys one by one meanwhile
    (no echo, no Enter) and is restored afterwards."""
    assert termios is not None
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            # A short select in a thread: the event loop never blocks on the terminal.
            ready: tuple[list[int], list[int], list[int]] = await anyio.to_thread.run_sync(
                select.select, [fd], [], [], KEY_POLL
            )
            if ready[0] and os.read(fd, 1) in (b"q", b"Q"):
                scope.cancel()
                return
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


async def _json_frames(store: Store, interval: float, iterations: int | None) -> int:
    """One compact JSON object per refresh on its own line, flushed (JSON Lines)."""
    previous: Frame | None = None
    refresh = 0
    while True:
        refresh += 1
        frame = await read_frame(store)
        rates = Rates.between(previous, frame)
        line = {
            "refresh": refresh,
            "at": time.time(),
            "by_domain": snapshot_counts(dict(frame.counts)),
            "completed_per_second": rates.completed,
            "failed_per_second": rates.failed,
            "workers": frame.workers,
            "rate_limits": rate_json(frame.rate_limits),
            "paused": [flow_dict(f) for f in frame.paused],
            "key_caps": [attrs.asdict(s) for s in frame.keys],
            "running": [
                {
                    "id": j.id,
                    "type": j.type,
                    "worker_id": j.worker_id,
                    "started_at": j.started_at,
                    "progress": j.progress,
                    "message": j.progress_message,
                }
                for j in frame.running[:RUNNING_SHOWN]
            ],
        }
        print(json.dumps(line, separators=(",", ":"), default=str), flush=True)
        if iterations is not None and refresh >= iterations:
            return 0
        previous = frame
        await anyio.sleep(interval)
