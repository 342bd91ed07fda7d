"""The chaos soak's figures, read from the store's tables and the side tables after the drain."""

from __future__ import annotations

import datetime
import json
import time
from collections import Counter, defaultdict
from typing import Any

import attrs
from _soak_chaos import Fault
from _soak_db import NOT_TERMINAL_SQL, Db
from rich.console import Console
from rich.table import Table
from soak_app import SUSPENDING_KINDS

from _common import percentile


@attrs.define
class Figure:
    """One line of the report: a value, its target, and whether it passed (None: no target)."""

    name: str
    value: str
    target: str = ""
    ok: bool | None = None


def must_be_zero(name: str, count: int, detail: str = "") -> Figure:
    """A figure that fails the run unless it is 0."""
    value = f"{count:,}" + (f"  {detail}" if detail else "")
    return Figure(name, value, "must be 0", count == 0)


def info(name: str, value: str, target: str = "") -> Figure:
    """A figure without a pass/fail verdict."""
    return Figure(name, value, target)


def lost_and_duplicated(db: Db, submitted: dict[int, int]) -> list[Figure]:
    """Submitted ids with no row; submissions stored twice (one `seq` in two top-level rows)."""
    ids = {int(r[0]) for r in db.rows("SELECT id FROM jobs")}
    lost = sorted(set(submitted.values()) - ids)
    seqs = Counter(
        json.loads(r[0])["seq"] for r in db.rows("SELECT payload FROM jobs WHERE parent_id IS NULL")
    )
    twice = sorted(s for s, k in seqs.items() if k > 1)
    return [
        info(
            "jobs submitted (top level) / rows in the store", f"{len(submitted):,} / {len(ids):,}"
        ),
        must_be_zero("jobs lost (submitted id, no row)", len(lost), _some(lost)),
        must_be_zero("submissions stored twice (same seq)", len(twice), _some(twice)),
    ]


def stranded(db: Db) -> list[Figure]:
    """Jobs not terminal after the drain, with a few of them named."""
    count = int(db.value(f"SELECT count(*) FROM jobs WHERE {NOT_TERMINAL_SQL}"))
    rows = db.rows(
        "SELECT id, type, state, attempt, reason, wait_for, worker_id, started_at, run_at, "
        f"expires_at, lease_expires_at FROM jobs WHERE {NOT_TERMINAL_SQL} ORDER BY id LIMIT 6"
    )
    now = time.time()
    detail = "; ".join(_describe(row, now) for row in rows)
    return [must_be_zero("jobs stranded non-terminal after the drain", count, detail)]


def _describe(row: tuple[Any, ...], now: float) -> str:
    """One stranded job: id, type, state, attempt and whatever it is waiting for."""
    job_id, job_type, state, attempt, reason, wait_for, worker, started, run_at, expires, lease = (
        row
    )
    parts = [f"{job_id} {job_type} {state} attempt {attempt}"]
    parts.append("started" if started is not None else "never started")
    for name, at in (("run_at", run_at), ("expires_at", expires), ("lease", lease)):
        if at is not None:
            parts.append(f"{name} {float(at) - now:+.0f}s")
    parts += [f"worker {worker}"] if worker else []
    parts += [f"wait_for {wait_for}"] if wait_for else []
    parts += [f"({reason})"] if reason else []
    return " ".join(parts)


def repeated_effects(db: Db, faults: list[Fault]) -> list[Figure]:
    """Step side effects written more than once, against what the kills and the freeze held."""
    writers: dict[tuple[int, str], list[str]] = defaultdict(list)
    for job_id, step, worker in db.rows(
        "SELECT job_id, step, worker FROM soak_effects ORDER BY job_id, step, at"
    ):
        writers[(int(job_id), str(step))].append(str(worker))
    repeats = sum(len(w) - 1 for w in writers.values())
    victims = {f.victim for f in faults if f.action in ("kill", "freeze")}
    unexplained = sorted(k for k, w in writers.items() if len(w) > 1 and not set(w[:-1]) & victims)
    kills = [f for f in faults if f.action == "kill"]
    budget = sum(f.held for f in faults if f.action in ("kill", "freeze"))
    return [
        info("step side effects written", f"{sum(len(w) for w in writers.values()):,}"),
        Figure(
            "step side effects repeated",
            f"{repeats:,} (kills {len(kills)}; jobs the killed or frozen workers held: {budget:,})",
            "at most 1 per job held at a kill or freeze",
            repeats <= budget,
        ),
        info(
            "  repeats first written by a worker never killed or frozen",
            f"{len(unexplained):,}  {_some(unexplained)}",
            "0 expected (a database crash may explain some)",
        ),
    ]


def duplicate_runs(db: Db) -> list[Figure]:
    """Handler invocations that ran twice at one attempt (or twice on one claim)."""
    runs = db.rows("SELECT job_id, kind, attempt, claim_seq FROM soak_runs")
    by_attempt = Counter((j, a) for j, k, a, _ in runs if k not in SUSPENDING_KINDS)
    by_claim = Counter((j, c) for j, _, _, c in runs)
    twice_attempt = sorted(k for k, n in by_attempt.items() if n > 1)
    twice_claim = sorted(k for k, n in by_claim.items() if n > 1)
    return [
        info("handler invocations recorded", f"{len(runs):,}"),
        must_be_zero(
            "jobs that ran twice at the same attempt (no suspension)",
            len(twice_attempt),
            _some(twice_attempt),
        ),
        must_be_zero(
            "invocations that ran twice on the same claim (all kinds)",
            len(twice_claim),
            _some(twice_claim),
        ),
    ]


def queue_wait(db: Db) -> list[Figure]:
    """From a job's creation to its first start, as the store recorded them."""
    waits = [
        float(first) - float(created)
        for created, first in db.rows(
            "SELECT j.created_at, MIN(a.started_at) FROM jobs j "
            "JOIN attempts a ON a.job_id = j.id GROUP BY j.id, j.created_at"
        )
    ]
    if not waits:
        return [info("queue wait (created to first start)", "no job started")]
    return [
        info(
            "queue wait p50 / p99 / max (created to first start)",
            f"{percentile(waits, 50) * 1000:,.0f} / {percentile(waits, 99) * 1000:,.0f} / "
            f"{max(waits) * 1000:,.0f} ms over {len(waits):,} jobs",
        )
    ]


def throughput(db: Db) -> list[Figure]:
    """Jobs ended per second, from the first creation to the last end."""
    ended, first, last = db.rows(
        "SELECT count(*), MIN(created_at), MAX(finished_at) FROM jobs WHERE finished_at IS NOT NULL"
    )[0]
    if not ended:
        return []
    rate = int(ended) / max(1e-9, float(last) - float(first))
    return [info("jobs ended per second (first created to last ended)", f"{rate:,.0f}")]


def server_log(lines: dict[str, list[str]] | None, faults: list[Fault]) -> list[Figure]:
    """Deadlocks and lock waits over deadlock_timeout (1 s) in the private server's log."""
    if lines is None:
        return [info("deadlocks / lock waits over 1 s", "N/A (SQLite)")]
    deadlocks, waits = lines["deadlocks"], lines["waits"]
    frozen = [_logged_at(w) for w in waits if _while_frozen(_logged_at(w), faults)]
    return [
        must_be_zero("deadlocks in the server log", len(deadlocks), _first(deadlocks)),
        must_be_zero(
            "lock waits over 1 s in the server log",
            len(waits),
            f"({len(frozen)} while a worker was SIGSTOPped) {_first(waits)}",
        ),
    ]


def _logged_at(line: str) -> float:
    """The time of a server log line (`log_line_prefix` '%m [%p] ': milliseconds, UTC)."""
    try:
        stamp = datetime.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        return float("nan")
    return stamp.replace(tzinfo=datetime.UTC).timestamp()


def _while_frozen(at: float, faults: list[Fault]) -> bool:
    """True if `at` falls between a SIGSTOP and the SIGCONT after it."""
    starts = [f.wall for f in faults if f.action == "freeze"]
    ends = [f.wall for f in faults if f.action == "thaw"]
    return any(s <= at <= e for s, e in zip(starts, ends, strict=False))


def log_excerpt(log: str) -> str:
    """The first deadlock and the first long lock wait of the server's log, with their details."""
    lines = log.splitlines()
    out: list[str] = []
    for marker in ("deadlock detected", "still waiting for"):
        at = next((i for i, line in enumerate(lines) if marker in line), None)
        if at is not None:
            out += [f"-- first '{marker}' in the server log:", *lines[at : at + 10]]
    return "\n".join(out)


def outcomes(db: Db, kinds: dict[int, str]) -> Table:
    """Terminal states by kind of job (what the mix expects is in the last column)."""
    counts: Counter[tuple[str, str]] = Counter()
    for job_id, job_type, state in db.rows("SELECT id, type, state FROM jobs"):
        kind = kinds.get(int(job_id), str(job_type).removeprefix("soak::"))
        counts[(kind, str(state))] += 1
    table = Table(title="Outcomes by kind")
    for column in ("kind", "states", "expected"):
        table.add_column(column)
    for kind in sorted({k for k, _ in counts}):
        states = ", ".join(f"{s} {n:,}" for (k, s), n in sorted(counts.items()) if k == kind)
        table.add_row(kind, states, EXPECTED.get(kind, ""))
    return table


EXPECTED = {
    "ttl": "completed or expired",
    "parent-fail_fast": "failed (a fail_fast child failed)",
    "doomed": "failed (on purpose)",
}


def render(console: Console, figures: list[Figure], title: str) -> bool:
    """Print the figures as a table; True if every figure with a target passed."""
    table = Table(title=title, show_lines=False)
    for column in ("figure", "value", "target", "verdict"):
        table.add_column(column, overflow="fold")
    for f in figures:
        verdict = "" if f.ok is None else ("[green]PASS[/]" if f.ok else "[bold red]FAIL[/]")
        table.add_row(f.name, f.value, f.target, verdict)
    console.print(table)
    return all(f.ok is not False for f in figures)


def _some(items: list[Any], n: int = 8) -> str:
    if not items:
        return ""
    more = f" and {len(items) - n:,} more" if len(items) > n else ""
    return "e.g. " + ", ".join(str(i) for i in items[:n]) + more


def _first(lines: list[str]) -> str:
    return lines[0][:300] if lines else ""
