"""Chaos soak: worker processes killed, frozen and cut off from a crashing database; nothing lost.

python benchmarks/chaos_soak.py                       # PostgreSQL: 50,000 jobs, 240 s of chaos
python benchmarks/chaos_soak.py -n 2000 --chaos-seconds 40
python benchmarks/chaos_soak.py --sqlite -n 2000 --chaos-seconds 40

PostgreSQL runs on the soak's own cluster (initdb on a spare loopback port as the `postgres`
user, log_lock_waits on, deadlock_timeout 1 s; never the shared server), so this must run as root
or postgres. --sqlite uses one SQLite file instead, with SIGKILLs only.

4 `python -m wireframe worker` processes (claim_ttl 3 s) run a deterministic mix (--seed) of
plain jobs, jobs with a ttl, jobs that fail some attempts, durable steps, durable sleeps and
parents whose children are joined (some fail_fast parents with a child that fails, some
fail_fast=False parents that join a failed child and go on). The jobs are submitted in chunks
spread over the chaos window, while a chaos loop SIGKILLs a random worker every 5 s and starts
another in its place, SIGSTOPs one for 30 s, and crash-restarts the database twice
(`pg_ctl -m immediate`, then start). Then the faults stop and the workers drain the queue.
The report gives each figure with its target; the exit status is 1 if any figure misses it.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import attrs
from _soak_chaos import Chaos, Fault, Pool, plan, private_cluster
from _soak_db import Db
from _soak_report import (
    Figure,
    duplicate_runs,
    info,
    log_excerpt,
    lost_and_duplicated,
    outcomes,
    queue_wait,
    render,
    repeated_effects,
    server_log,
    stranded,
    throughput,
)
from rich.console import Console
from soak_app import Flaky, Nap, Parent, Plain, Steps, soak

from wireframe import Scheduler

console = Console(width=None if sys.stdout.isatty() else 150)


# -- the job mix --------------------------------------------------------------------------------


@attrs.frozen
class Item:
    """One job to submit: its payload, its ttl, and its kind for the report."""

    payload: Any
    kind: str
    ttl: float | None = None
    fail_fast: bool = True  # a parent's: whether a failed child fails it

    @property
    def options(self) -> tuple[float | None, bool]:
        """The submit options: items with the same ones are submitted together."""
        return self.ttl, self.fail_fast


def job_mix(n: int, seed: int) -> list[Item]:
    """`n` jobs, the same for the same seed."""
    rng = random.Random(seed)
    return [_one(seq, rng) for seq in range(n)]


def _one(seq: int, rng: random.Random) -> Item:
    r = rng.random()
    work = rng.choice([0.0, 0.001, 0.005, 0.02])
    if r < 0.35:
        return Item(Plain(seq, work), "plain")
    if r < 0.45:
        return Item(Plain(seq, work), "ttl", rng.choice([2.0, 10.0, 60.0]))
    if r < 0.60:
        return Item(Flaky(seq, work, rng.randint(1, 2)), "flaky")
    if r < 0.80:
        return Item(Steps(seq, 0.002, rng.randint(2, 5)), "steps")
    if r < 0.90:
        return Item(Nap(seq, round(rng.uniform(0.2, 3.0), 2)), "nap")
    mode = rng.choices(["ok", "fail_fast", "tolerant"], [2, 1, 1])[0]
    return Item(Parent(seq, rng.randint(1, 3), mode), f"parent-{mode}", None, mode != "tolerant")


# -- submitting ---------------------------------------------------------------------------------


@attrs.define
class Submitter:
    """Submits the mix in chunks spread evenly over `spread` seconds."""

    client: Scheduler
    items: list[Item]
    chunk: int
    spread: float
    ids: dict[int, int] = attrs.field(factory=dict)  # seq -> job id
    kinds: dict[int, str] = attrs.field(factory=dict)  # job id -> kind
    errors: int = 0
    done_at: float = 0.0

    async def run(self, t0: float) -> None:
        """Submit every chunk at its time (monotonic seconds after `t0`)."""
        chunks = [self.items[i : i + self.chunk] for i in range(0, len(self.items), self.chunk)]
        for k, chunk in enumerate(chunks):
            await anyio.sleep(max(0.0, t0 + k * self.spread / len(chunks) - time.monotonic()))
            for options in sorted({it.options for it in chunk}, key=str):
                await self._submit([it for it in chunk if it.options == options], *options)
        self.done_at = time.monotonic()

    async def _submit(self, items: list[Item], ttl: float | None, fail_fast: bool) -> None:
        """One transaction; retried (the same jobs again) while the database is away."""
        payloads = [it.payload for it in items]
        while True:
            try:
                results = await self.client.submit_many(payloads, ttl=ttl, fail_fast=fail_fast)
                break
            except Exception as exc:
                self.errors += 1
                console.print(f"submit failed, retrying: {exc!r}"[:300], markup=False)
                await anyio.sleep(0.5)
        for it, res in zip(items, results, strict=True):
            self.ids[it.payload.seq] = res.id
            self.kinds[res.id] = it.kind


# -- the run ------------------------------------------------------------------------------------


@attrs.define
class Run:
    """What one soak did: the pool, the faults, the submissions and the timings."""

    args: argparse.Namespace
    db: Db
    pool: Pool
    faults: list[Fault]
    submitter: Submitter | None = None
    chaos_seconds: float = 0.0
    drain_seconds: float = 0.0
    drained: bool = False
    log_lines: dict[str, list[str]] | None = None


async def soak_phase(run: Run, client: Scheduler, chaos: Chaos) -> None:
    """Submit the mix while the chaos plays; then wait for the drain."""
    args = run.args
    run.submitter = Submitter(
        client, job_mix(args.n, args.seed), args.chunk, args.chaos_seconds * args.submit_share
    )
    t0 = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(run.submitter.run, t0)
        try:
            await anyio.to_thread.run_sync(
                chaos.run, t0, args.chaos_seconds, abandon_on_cancel=True
            )
        finally:
            chaos.halt.set()  # interrupted: end the chaos at once
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(chaos.finished.wait, 120)
    run.chaos_seconds = time.monotonic() - t0
    console.print(f"chaos over after {run.chaos_seconds:.1f} s; draining")
    run.drained, run.drain_seconds = await drain(run)


async def drain(run: Run) -> tuple[bool, float]:
    """Wait until no job is left non-terminal (True), or give up (False) once --drain-timeout
    passes or the count of jobs left has not gone down for --stall-seconds."""
    began = shown = moved = time.monotonic()
    fewest: int | None = None
    while (elapsed := time.monotonic() - began) < run.args.drain_timeout:
        run.pool.replace_exited()
        left = await anyio.to_thread.run_sync(run.db.not_terminal)
        if left == 0:
            return True, elapsed
        if fewest is None or left < fewest:
            fewest, moved = left, time.monotonic()
        elif time.monotonic() - moved > run.args.stall_seconds:
            console.print(f"  no progress for {run.args.stall_seconds:.0f} s: giving up")
            break
        if time.monotonic() - shown >= 10:
            shown = time.monotonic()
            console.print(f"  {elapsed:5.0f} s: {left:,} jobs not ended yet")
        await anyio.sleep(0.5)
    return False, time.monotonic() - began


async def run_soak(run: Run, url: str, chaos: Chaos) -> None:
    """Open the store, start the workers, run the soak, stop the workers."""
    client = Scheduler(url, domains=[soak], worker=False)
    await client.open()  # migrates before the workers start
    try:
        run.db.create_side_tables()
        for _ in range(run.args.workers):
            run.pool.spawn()
        try:
            await soak_phase(run, client, chaos)
        finally:
            await anyio.to_thread.run_sync(run.pool.stop_all)
    finally:
        await client.close()


def figures(run: Run) -> list[Figure]:
    """Every figure of the report."""
    assert run.submitter is not None
    db = run.db
    db.close()  # a fresh connection: the old one may predate the last crash
    kills = sum(1 for f in run.faults if f.action == "kill")
    freezes = [f for f in run.faults if f.action == "freeze"]
    crashes = [f for f in run.faults if f.action == "crash"]
    faults = f"{kills} SIGKILLs"
    if freezes:
        held = sum(f.held for f in freezes)
        thaws = [f for f in run.faults if f.action == "thaw"]
        frozen = sum(t.wall - f.wall for f, t in zip(freezes, thaws, strict=False))
        faults += f", SIGSTOP of {frozen:.0f} s ({held} jobs held)"
    if crashes:
        took = ", ".join(f"{f.took:.1f}" for f in crashes)
        faults += f", {len(crashes)} database crash-restarts ({took} s)"
    out = [
        info("faults", faults),
        Figure(
            "workers that exited by themselves",
            f"{len(run.pool.self_exits)} {run.pool.self_exits or ''}",
            "0 expected",
            None,
        ),
        info("submit calls that raised (retried)", f"{run.submitter.errors}"),
        *lost_and_duplicated(db, run.submitter.ids),
        *stranded(db),
        *repeated_effects(db, run.faults),
        *duplicate_runs(db),
        *server_log(run.log_lines, run.faults),
        *queue_wait(db),
        *throughput(db),
        Figure(
            "time to drain (after the chaos)",
            f"{run.drain_seconds:.1f} s"
            + ("" if run.drained else " (gave up: see the stranded jobs)"),
        ),
    ]
    return out


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("-n", type=int, default=50_000, help="top-level jobs to submit (default 50,000)")
    add("--seed", type=int, default=15, help="seed of the job mix and of the victims' choice")
    add("--sqlite", action="store_true", help="one SQLite file, SIGKILLs only")
    add("--workers", type=int, default=4)
    add("--concurrency", type=int, default=16, help="max_concurrency of each worker")
    add("--claim-ttl", type=float, default=3.0)
    add("--chaos-seconds", type=float, default=240.0, help="how long faults are injected")
    add("--kill-every", type=float, default=5.0, help="seconds between SIGKILLs")
    add("--freeze-seconds", type=float, default=30.0, help="how long one worker is SIGSTOPped")
    add("--crashes", type=int, default=2, help="database crash-restarts (PostgreSQL)")
    add("--submit-share", type=float, default=0.8, help="share of the chaos spent submitting")
    add("--chunk", type=int, default=200, help="jobs per submit transaction")
    add("--drain-timeout", type=float, default=600.0, help="give up draining after this")
    add(
        "--stall-seconds",
        type=float,
        default=60.0,
        help="give up draining when the jobs left have not gone down for this long",
    )
    add("--keep", action="store_true", help="keep the worker logs (and SQLite file)")
    args = parser.parse_args()
    if args.n < 1 or args.workers < 2 or args.chaos_seconds <= 0 or args.chunk < 1:
        parser.error("-n and --chunk must be >= 1, --workers >= 2, --chaos-seconds > 0")
    if not 0 < args.submit_share <= 1:
        parser.error(f"--submit-share must be in (0, 1], got {args.submit_share}")
    if args.sqlite:
        args.freeze_seconds, args.crashes = 0.0, 0
    return args


@contextmanager
def database(args: argparse.Namespace, tmp: Path) -> Iterator[tuple[str, str, Any]]:
    """(store URL, side-table target, cluster or None) for the chosen store."""
    if args.sqlite:
        path = tmp / "soak.db"
        yield f"sqlite:///{path}", str(path), None
        return
    with private_cluster() as cluster:
        yield f"{cluster.dsn}?schema=soak_store", cluster.dsn, cluster


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: workers stopped, cluster removed


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, _terminate)
    store = "SQLite" if args.sqlite else "PostgreSQL (private cluster)"
    console.print(
        f"[bold]chaos soak[/] {store}: n={args.n:,} seed={args.seed} workers={args.workers} "
        f"concurrency={args.concurrency} claim_ttl={args.claim_ttl}s chaos={args.chaos_seconds}s"
    )
    tmp = Path(tempfile.mkdtemp(prefix="wf-soak-"))
    try:
        passed = soak_and_report(args, tmp, store)
    except BaseException:
        console.print(f"interrupted; worker logs: {tmp}")
        raise
    if args.keep or not passed:
        console.print(f"worker logs and server.log: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print("[bold green]PASSED[/]" if passed else "[bold red]FAILED[/]")
    return 0 if passed else 1


def soak_and_report(args: argparse.Namespace, tmp: Path, store: str) -> bool:
    """Run the soak on a fresh database and print its report; True if every target was met."""
    with database(args, tmp) as (url, target, cluster):
        env = {
            "SOAK_RECORD": target,
            "SOAK_CLAIM_TTL": str(args.claim_ttl),
            "SOAK_CONCURRENCY": str(args.concurrency),
        }
        db = Db(target, "soak_store")
        pool = Pool(url, env, tmp)
        faults = plan(args.chaos_seconds, args.kill_every, args.freeze_seconds, args.crashes)
        run = Run(args, db, pool, faults)
        anyio.run(run_soak, run, url, Chaos(pool, db, faults, args.seed, cluster))
        if cluster is not None:
            run.log_lines = {"deadlocks": cluster.deadlocks(), "waits": cluster.lock_waits()}
            (tmp / "server.log").write_text(cluster.server_log())
        passed = render(console, figures(run), f"chaos soak, {store}")
        console.print(outcomes(db, run.submitter.kinds if run.submitter else {}))
        if cluster is not None:
            console.print(log_excerpt(cluster.server_log()), markup=False, highlight=False)
        db.close()
    return passed


if __name__ == "__main__":
    raise SystemExit(main())
