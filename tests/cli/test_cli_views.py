"""What the inspection commands print: --version, `jobs` at 80 columns with a footer and
priority names, readable durable reasons, `top --json` as JSON Lines. In-process, SQLite."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from cli_support import HERE, WAIT, Cli, cli_env, in_process_cli, in_store

from wireframe import Domain, JobContext, JobSuspended, Scheduler, Service
from wireframe.store import NewJob, Store

LONG_TYPE = "media::resize_thumbnail_large"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """120 pending jobs of one long type; priorities low, normal, high, critical and 15."""

    async def seed(store: Store) -> None:
        levels = [0, 10, 20, 30, 15]
        jobs = [NewJob(LONG_TYPE, "media", "{}", priority=levels[i % 5]) for i in range(120)]
        await store.submit(jobs)

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    in_store(url, seed)
    return url


@pytest.fixture
def run(url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return in_process_cli(url, capsys, monkeypatch, columns=80)


def test_version(run: Cli) -> None:
    from wireframe import __version__

    result = run("--version")
    assert result.code == 0 and result.out.startswith(f"wireframe {__version__} "), result


def test_jobs_fits_80_columns_with_a_footer_and_priority_names(run: Cli) -> None:
    result = run("jobs")
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= 80, result.out
    rows = [line for line in lines if LONG_TYPE in line]
    assert len(rows) == 50  # one line per job, the type whole
    assert "showing 50 of 120" in result.out
    priorities = {row.split()[3] for row in rows}
    assert priorities == {"low", "normal", "high", "critical", "15"}
    assert "showing" not in run("jobs", "--limit", "200").out
    assert "showing 3 of 120" in run("jobs", "--limit", "3", "--state", "pending,failed").out
    assert "no jobs match" in run("jobs", "--limit", "3", "--state", "failed").out


sleepy = Domain("sleepy")


@sleepy.job()
async def nap(job: dict[str, Any], ctx: JobContext) -> None:
    await ctx.sleep("cool-off", 3600)


def test_a_durable_sleep_shows_a_readable_wake_time(
    run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'sleep.db'}"
    monkeypatch.setenv("WIREFRAME_STORE", url)

    async def sleep_one() -> int:
        scheduler = Scheduler(url, domains=[sleepy], poll_interval=0.05)
        service = Service("sleep", handle_signals=False, graceful_timeout=5)
        service.add_task(scheduler)
        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(service.run)
                async with scheduler.subscribe() as events:
                    job_id = (await scheduler.submit({}, type="sleepy::nap")).id
                    async for event in events:
                        if isinstance(event, JobSuspended) and event.job_id == job_id:
                            break
                service.stop()
        return job_id

    job_id = anyio.run(sleep_one)
    wake = time.strftime("%H:%M:%S", time.localtime(time.time() + 3600))[:5]
    shown = run("job", str(job_id)).out
    assert re.search(rf"sleeping \(cool-off\) until {wake}:\d\d, in (60|59) min", shown), shown
    listed = run("jobs", "--state", "suspended").out
    assert "sleeping (cool-off) until" in listed, listed


def test_top_json_is_json_lines(run: Cli) -> None:
    result = run("top", "--json", "--iterations", "3", "--interval", "0.01s")
    assert result.code == 0, result
    frames = [json.loads(line) for line in result.out.splitlines()]
    assert [f["refresh"] for f in frames] == [1, 2, 3]
    assert frames[0]["by_domain"] == {"media": {"pending": 120}}
    assert frames[0]["workers"] == 0  # live workers


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX terminal")
def test_q_quits_top_and_restores_the_terminal(url: str) -> None:
    """A real process on a pseudo-terminal: `q` ends the live view, exit 0, terminal as it was."""
    import pty
    import select
    import termios

    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen(
        [sys.executable, "-m", "wireframe", "top", "--store", url, "--interval", "1h"],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
        env=cli_env(None),
        cwd=HERE,
    )
    try:
        seen = b""
        deadline = time.monotonic() + WAIT
        while b"running jobs" not in seen:  # the first frame is up
            left = deadline - time.monotonic()
            assert left > 0 and proc.poll() is None, seen
            if select.select([master], [], [], left)[0]:
                seen += os.read(master, 65536)
        os.write(master, b"q")
        assert proc.wait(timeout=WAIT) == 0
        assert termios.tcgetattr(slave) == before
    finally:
        proc.kill()
        proc.wait()
        os.close(master)
        os.close(slave)
