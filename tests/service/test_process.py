"""Signals and exit codes of real processes: examples/main.py and a stubborn helper script."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "main.py"
WAIT = 20.0  # seconds; only ever waited for in full when something is broken


class Proc:
    """A child process whose merged output is read line by line on a thread."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=cwd,  # what the script writes (the demo's database) stays out of the checkout
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, text: str) -> None:
        """Block until a line containing ``text`` appears (fail after WAIT seconds)."""
        deadline = time.monotonic() + WAIT
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.popen.kill()
                pytest.fail(f"no line with {text!r} within {WAIT} s:\n{''.join(self.seen)}")
            if line is None:
                pytest.fail(f"process ended before {text!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            if text in line:
                return

    def finish(self) -> tuple[int, str]:
        """Wait for exit; return the exit code and the whole output."""
        try:
            code = self.popen.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            pytest.fail(f"process did not exit within {WAIT} s:\n{''.join(self.seen)}")
        while (line := self.lines.get(timeout=WAIT)) is not None:
            self.seen.append(line)
        return code, "".join(self.seen)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_example_stops_gracefully_on_sigterm(tmp_path: Path, backend: str) -> None:
    proc = Proc(str(EXAMPLE), "--backend", backend, cwd=tmp_path)
    proc.wait_for("service 'demo' is ready")
    proc.wait_for("tick 1")
    proc.popen.send_signal(signal.SIGTERM)
    code, output = proc.finish()
    assert code == 0, output
    assert "received SIGTERM" in output
    assert "shutdown hook: flushed" in output
    assert "stopped cleanly" in output


def test_example_once_exits_by_itself(tmp_path: Path) -> None:
    proc = Proc(str(EXAMPLE), "--once", cwd=tmp_path)
    code, output = proc.finish()
    assert code == 0, output
    assert "--once: demo finished" in output
    assert "shutdown hook: flushed" in output
    for task in ("migrate", "database-ready", "ticker", "health"):
        assert f"'{task}'" in output


STUBBORN = """
    import anyio
    from wireframe.service import Service, ShutdownHook, Task, TaskKind

    service = Service("stubborn", graceful_timeout=60.0)

    async def ignores_stop(stop):
        print("ignoring stop", flush=True)
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            late = anyio.current_time() - stop.deadline
            print(f"cancelled: forced={{stop.forced}} late={{late:.1f}}", flush=True)
            raise

    async def hook():
        print("hook ran", flush=True)

    service.add_task(Task.from_fn("ignores-stop", ignores_stop, kind=TaskKind.UNCONSTRAINED))
    service.add_shutdown_hook(ShutdownHook("hook", hook))
    raise SystemExit(service.run_sync(backend={backend!r}))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_second_sigint_forces_the_stop(tmp_path: Path, backend: str) -> None:
    script = tmp_path / "stubborn.py"
    script.write_text(textwrap.dedent(STUBBORN).format(backend=backend))
    proc = Proc(str(script), cwd=tmp_path)
    proc.wait_for("is ready")
    proc.wait_for("ignoring stop")
    started = time.monotonic()
    proc.popen.send_signal(signal.SIGINT)
    proc.wait_for("stopping: received SIGINT")
    proc.popen.send_signal(signal.SIGINT)
    code, output = proc.finish()
    assert time.monotonic() - started < 30  # far below the 60 s graceful timeout
    assert code == 1, output
    assert "forcing the stop" in output
    assert "'ignores-stop' was cancelled by a forced stop" in output
    assert "cancelled: forced=True late=0.0" in output  # the deadline moved to the 2nd signal
    assert "hook ran" not in output  # hooks not yet run are skipped by a forced stop


EXITS = """
    import anyio
    from wireframe.service import Service, ShutdownHook, Task, TaskKind

    service = Service("exits", graceful_timeout=60.0)

    async def exits(stop):
        await anyio.sleep(0.1)
        raise {exc}

    async def patient(stop):
        await stop.wait()
        await anyio.sleep(0.1)
        print("patient stopped gracefully", flush=True)

    async def hook():
        print("hook ran", flush=True)

    service.add_task(Task.from_fn("exits", exits))
    service.add_task(Task.from_fn("patient", patient, kind=TaskKind.UNCONSTRAINED))
    service.add_shutdown_hook(ShutdownHook("hook", hook))
    raise SystemExit(service.run_sync(backend={backend!r}))
"""


@pytest.mark.parametrize(
    ("backend", "exc", "code"),
    [("asyncio", "SystemExit(4)", 4), ("trio", "KeyboardInterrupt", 130)],
)
def test_a_task_ending_the_process_stops_the_service_gracefully_first(
    tmp_path: Path, backend: str, exc: str, code: int
) -> None:
    script = tmp_path / "exits.py"
    script.write_text(textwrap.dedent(EXITS).format(backend=backend, exc=exc))
    proc = Proc(str(script), cwd=tmp_path)
    status, output = proc.finish()
    assert status == code, output
    assert output.index("patient stopped gracefully") < output.index("hook ran"), output
    assert "task 'exits' failed: " + (exc if "(" in exc else exc + "()") in output
    assert "Traceback" in output  # the failure is logged with where it came from


JSON_LOGS = """
    import logging, os, signal, threading
    from wireframe.service import Service, Task

    service = Service("jsonsvc", graceful_timeout=10.0)

    async def main(stop):
        pool = logging.getLogger("pool")  # a library logging from its own thread
        thread = threading.Thread(target=pool.warning, args=("from a pool thread",))
        thread.start()
        thread.join()
        os.kill(os.getpid(), signal.SIGTERM)
        await stop.wait()

    service.add_task(Task.from_fn("main", main))
    raise SystemExit(service.run_sync(backend={backend!r}))
"""


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_sync_writes_json_lines_naming_the_service_when_stderr_is_no_terminal(
    tmp_path: Path, backend: str
) -> None:
    script = tmp_path / "json_logs.py"
    script.write_text(textwrap.dedent(JSON_LOGS).format(backend=backend))
    env = {k: v for k, v in os.environ.items() if k != "WIREFRAME_LOG_FORMAT"}
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=WAIT
    )
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is JSON
    assert all(r["service"] == "jsonsvc" for r in records), records
    messages = [r["message"] for r in records]
    assert "from a pool thread" in messages
    assert "received SIGTERM: stopping gracefully (send it again to force)" in messages
    summary = records[-1]
    assert summary["message"] == (
        "service 'jsonsvc' stopped cleanly (received SIGTERM): 1 finished"
    )
    assert summary["stop_reason"] == "received SIGTERM" and summary["stop_reason_kind"] == "signal"
    assert [(t["id"], t["state"]) for t in summary["tasks"]] == [("main", "finished")]
