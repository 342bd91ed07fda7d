"""The chaos soak's processes: `wireframe worker` processes, the faults, a private PostgreSQL.

`Pool` starts `python -m wireframe worker --app soak_app:scheduler` processes and replaces the
ones that die. `Chaos` runs a timed plan of faults against the pool (SIGKILL a worker and start
another, SIGSTOP one and SIGCONT it later, crash-restart the database) and notes what each fault
held: the jobs the store shows running under the victim's lease at that moment, which is the
most a fault may make run again. `private_cluster` is the soak's own PostgreSQL server
(tests/store/private_pg.py), never the shared one.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import attrs
from _soak_db import Db

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "store"))

from private_pg import PrivateCluster, _unusable  # noqa: E402


class Pool:
    """The worker processes, named w0, w1, ... in the order they started."""

    def __init__(self, url: str, env: dict[str, str], logs: Path) -> None:
        self.url = url
        self.env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]), **env}
        self.logs = logs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.frozen: set[str] = set()
        self.gone: set[str] = set()  # killed by the soak, or exited
        self.self_exits: list[tuple[str, int]] = []

    def spawn(self) -> str:
        """Start one more worker; return its name."""
        name = f"w{len(self.procs)}"
        log = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "wireframe",
                "worker",
                "--store",
                self.url,
                "--app",
                "soak_app:scheduler",
                "--worker-id",
                name,
                "--graceful-timeout",
                "5",
                "--log-level",
                "warning",
            ],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        log.close()
        return name

    def running(self) -> list[str]:
        """Workers alive and not frozen."""
        return [n for n in self.procs if n not in self.gone and n not in self.frozen]

    def kill(self, name: str) -> None:
        """SIGKILL one worker and wait for it."""
        self.procs[name].kill()
        self.procs[name].wait(30)
        self.gone.add(name)

    def freeze(self, name: str) -> None:
        """SIGSTOP one worker."""
        self.procs[name].send_signal(signal.SIGSTOP)
        self.frozen.add(name)

    def thaw(self, name: str) -> None:
        """SIGCONT a frozen worker."""
        self.procs[name].send_signal(signal.SIGCONT)
        self.frozen.discard(name)

    def replace_exited(self) -> None:
        """Note workers that exited on their own, and start one in place of each."""
        for name, proc in list(self.procs.items()):
            if name not in self.gone and proc.poll() is not None:
                self.gone.add(name)
                self.self_exits.append((name, int(proc.returncode)))
                self.spawn()

    def stop_all(self) -> None:
        """SIGCONT the frozen, SIGTERM every live worker, SIGKILL those still alive after 20 s."""
        for name in list(self.frozen):
            self.thaw(name)
        live = [p for n, p in self.procs.items() if n not in self.gone]
        for proc in live:
            proc.terminate()
        deadline = time.monotonic() + 20
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@attrs.define
class Fault:
    """One fault of the plan, and what it found when it struck."""

    at: float
    action: str  # kill | freeze | thaw | crash
    victim: str = ""
    held: int = 0
    took: float = 0.0
    wall: float = 0.0  # time.time() when it struck


def plan(seconds: float, kill_every: float, freeze_for: float, crashes: int) -> list[Fault]:
    """The faults of a chaos window of `seconds`, in time order."""
    faults = [Fault(t, "kill") for t in _every(kill_every, seconds)]
    if freeze_for > 0:
        start = 0.15 * seconds
        faults += [Fault(start, "freeze"), Fault(start + min(freeze_for, 0.7 * seconds), "thaw")]
    faults += [
        Fault(seconds * (0.4 + 0.35 * i / max(1, crashes - 1)), "crash") for i in range(crashes)
    ]
    return sorted(faults, key=lambda f: f.at)


def _every(step: float, end: float) -> list[float]:
    return [step * i for i in range(1, int(end / step) + 1) if step * i < end] if step > 0 else []


class Chaos:
    """Runs a plan of faults against a pool (blocking: call it in a thread)."""

    def __init__(
        self, pool: Pool, db: Db, faults: list[Fault], seed: int, cluster: PrivateCluster | None
    ) -> None:
        self.pool = pool
        self.db = db
        self.faults = faults
        self.rng = random.Random(seed ^ 0x5EED)
        self.cluster = cluster
        self.halt = threading.Event()  # set to end the chaos early (the soak was interrupted)
        self.finished = threading.Event()

    def run(self, t0: float, seconds: float) -> None:
        """Strike each fault at its time (seconds after `t0`, a monotonic time) until `seconds`."""
        try:
            for fault in self.faults:
                if not self._until(t0 + fault.at):
                    return
                began, fault.wall = time.monotonic(), time.time()
                getattr(self, f"_{fault.action}")(fault)
                fault.took = time.monotonic() - began
            self._until(t0 + seconds)
        finally:
            self.finished.set()

    def _until(self, when: float) -> bool:
        """Wait until `when`, replacing workers that exit meanwhile; False if halted."""
        while time.monotonic() < when:
            self.pool.replace_exited()
            if self.halt.wait(min(0.2, max(0.0, when - time.monotonic()))):
                return False
        return True

    def _kill(self, fault: Fault) -> None:
        fault.victim = self.rng.choice(self.pool.running())
        self.pool.kill(fault.victim)
        fault.held = self.db.held_by(fault.victim)
        self.pool.spawn()

    def _freeze(self, fault: Fault) -> None:
        fault.victim = self.rng.choice(self.pool.running())
        self.pool.freeze(fault.victim)
        fault.held = self.db.held_by(fault.victim)

    def _thaw(self, fault: Fault) -> None:
        for name in list(self.pool.frozen):
            fault.victim = name
            self.pool.thaw(name)

    def _crash(self, fault: Fault) -> None:
        assert self.cluster is not None
        self.cluster.crash_restart()


@contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """The soak's own PostgreSQL server (log_lock_waits on, deadlock_timeout 1 s)."""
    reason = _unusable()
    if reason is not None:
        raise SystemExit(f"chaos_soak: cannot start a private PostgreSQL cluster: {reason}")
    cluster = PrivateCluster(
        {
            "max_connections": "200",
            "log_lock_waits": "on",
            "deadlock_timeout": "'1s'",
            "log_timezone": "'UTC'",
        }
    )
    try:
        cluster.init()
        cluster.start()
        deadline = time.monotonic() + 60
        while not cluster.running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"private cluster did not start:\n{cluster.server_log()}")
            time.sleep(0.1)
        yield cluster
    finally:
        cluster.destroy()
