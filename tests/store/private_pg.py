"""A private PostgreSQL cluster for tests that crash, restart or freeze the server.

Such a test must never touch the shared server. `PrivateCluster` runs `initdb` on a temporary
directory as the `postgres` user (the server refuses to run as root), starts `postgres` on a
spare loopback port, and offers what fault tests need: an immediate-mode restart (a crash: the
WAL is replayed and transaction ids that never reached it are handed out again), a stop, and
the server's log (deadlocks, lock waits). Skips with the reason when the binaries are missing
or the test cannot run them as `postgres`, except under `CI=true`, where that is a failure.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest


def _bindir() -> Path | None:
    """The directory of `pg_ctl` and `initdb`, newest version first, or None."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return Path(dirs[-1]) if dirs else None


def _unusable() -> str | None:
    """Why a private cluster cannot be started here, or None."""
    bindir = _bindir()
    if bindir is None or not (bindir / "initdb").exists():
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != "postgres":
        return "a private cluster runs as the postgres user: the tests must run as root or postgres"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres user to run a private cluster as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[postgres]')"
    return None


def require_private_pg() -> None:
    """Skip (fail under CI=true) when a private cluster cannot be started here."""
    reason = _unusable()
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)", pytrace=False)
        pytest.skip(reason)


def spare_port() -> int:
    """A loopback TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrivateCluster:
    """One PostgreSQL server of a test's own, on 127.0.0.1 and a spare port."""

    def __init__(self, settings: dict[str, str] | None = None) -> None:
        bindir = _bindir()
        assert bindir is not None
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="wf-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port = spare_port()
        self.settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.root}'",
            "fsync": "off",  # crash tests restart the server, not the machine
            "max_connections": "100",
            "log_lock_waits": "on",
            "deadlock_timeout": "'1s'",
            "log_min_messages": "warning",
            **(settings or {}),
        }
        self.dsn = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, args: Sequence[str], **kwargs: object) -> None:
        cmd = list(args)
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120, **kwargs)  # type: ignore[call-overload]

    def init(self) -> None:
        """`initdb` (trust authentication) and the settings above."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._as_postgres(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            for name, value in self.settings.items():
                conf.write(f"{name} = {value}\n")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._as_postgres(
            [
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-w",
                "-t",
                "60",
                "start",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`fast`, `smart` or `immediate`: a crash)."""
        self._as_postgres(
            [str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"]
        )

    def crash_restart(self) -> None:
        """Crash the server (`-m immediate`: no checkpoint, clients cut off) and start it again."""
        self.stop("immediate")
        self.start()

    def running(self) -> bool:
        """True while the server accepts connections."""
        import psycopg

        try:
            psycopg.connect(self.dsn, connect_timeout=2).close()
        except psycopg.Error:
            return False
        return True

    def server_log(self) -> str:
        """Everything the server logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def deadlocks(self) -> list[str]:
        """Lines of the server's log that report a deadlock."""
        return [line for line in self.server_log().splitlines() if "deadlock detected" in line]

    def lock_waits(self) -> list[str]:
        """Lines of the server's log that report a lock wait longer than `deadlock_timeout`."""
        return [line for line in self.server_log().splitlines() if "still waiting for" in line]

    def destroy(self) -> None:
        """Stop the server if it runs and delete its files."""
        if (self.data / "postmaster.pid").exists():
            try:
                self.stop("immediate")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.root, ignore_errors=True)


@contextmanager
def private_cluster(settings: dict[str, str] | None = None) -> Iterator[PrivateCluster]:
    """A started private cluster, destroyed afterwards (skips where one cannot run)."""
    require_private_pg()
    cluster = PrivateCluster(settings)
    try:
        cluster.init()
        cluster.start()
        deadline = time.monotonic() + 30
        while not cluster.running():
            if time.monotonic() > deadline:
                raise RuntimeError(f"private cluster did not start:\n{cluster.server_log()}")
            time.sleep(0.05)
        yield cluster
    finally:
        cluster.destroy()
