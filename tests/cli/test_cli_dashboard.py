"""`wireframe dashboard`: serves a store's dashboard, says where, refuses bad options."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cli_support import HERE, WAIT, Cli, assert_one_line_error, cli_env

pytest.importorskip("jinja2", reason="the dashboard needs Jinja2 (the test extra installs it)")


def test_serves_until_sigterm_and_says_where(cli: Cli, store_url: str) -> None:
    assert cli("migrate").code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "wireframe", "dashboard", "--port", "0", "--interval", "50ms"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(store_url),
        cwd=HERE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        found = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
        assert found is not None, line
        assert "read-only" in line
        assert "wireframe dashboard of " in line
        page = httpx.get(found.group(1) + "/jobs", timeout=WAIT)
        assert page.status_code == 200 and "no jobs match" in page.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--port", "http"], "--port 'http' must be a whole number from 0 to 65535"),
        (["--port", "70000"], "--port '70000' must be a whole number"),
        (["--token", " "], "dashboard token must not be empty"),
        (["--interval", "0s"], "--interval '0s' must be more than zero"),
    ],
)
def test_bad_options_are_usage_errors(cli: Cli, options: list[str], message: str) -> None:
    assert cli("migrate").code == 0
    assert_one_line_error(cli("dashboard", *options), 2, message)


def test_a_missing_store_is_not_created(cli: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.db'}"
    assert_one_line_error(cli("dashboard", store=url), 1, f"no store at {url}")
    assert not (tmp_path / "none.db").exists()
