"""`wireframe run` under systemd: a real process notifies a socket standing in for systemd; and
the example unit file parses and runs a real `wireframe worker` command line."""

from __future__ import annotations

import configparser
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import ROOT, WAIT, cli_env

from wireframe.cli import build_parser
from wireframe.cli.values import parse_duration

UNIT = ROOT / "examples" / "wireframe-worker.service"


def receive_until(sock: socket.socket, prefix: str, seen: list[str]) -> None:
    while True:
        message = sock.recv(4096).decode()  # the socket times out after WAIT seconds
        seen.append(message)
        if message.startswith(prefix):
            return


@pytest.mark.slow
def test_wireframe_run_notifies_systemd(tmp_path: Path) -> None:
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent("""\
        from wireframe import Service

        service = Service("notified")

        @service.task()
        async def idle(stop):
            await stop.wait()
        """)
    )
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(WAIT)
        proc = subprocess.Popen(
            [sys.executable, "-m", "wireframe", "run", str(app)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(None, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="10000000"),
            cwd=tmp_path,
        )
        try:
            seen: list[str] = []
            receive_until(sock, "READY=1", seen)
            proc.send_signal(signal.SIGTERM)
            receive_until(sock, "STOPPING=1", seen)
            _, err = proc.communicate(timeout=WAIT)
            assert proc.returncode == 0, err
        finally:
            proc.kill()
            proc.wait()
    assert "WATCHDOG=1" in seen
    assert seen.index("READY=1\nSTATUS=ready") < seen.index("STOPPING=1\nSTATUS=stopping")


def test_the_example_unit_file_runs_wireframe_worker() -> None:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    unit.read_string(UNIT.read_text())
    service = unit["Service"]
    assert service["Type"] == "notify"
    watchdog = int(service["WatchdogSec"])
    assert watchdog > 0
    argv = shlex.split(service["ExecStart"])
    assert Path(argv[0]).name == "wireframe"  # the console script of pyproject.toml
    args = build_parser().parse_args(argv[1:])
    assert args.command == "worker"
    # systemd's stop timeout leaves the graceful timeout room for the shutdown hooks
    graceful = parse_duration(args.graceful_timeout, option="--graceful-timeout")
    assert int(service["TimeoutStopSec"]) > graceful
    assert unit["Install"]["WantedBy"] == "multi-user.target"
