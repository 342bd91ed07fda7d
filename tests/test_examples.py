"""Every script in examples/ runs to completion by itself and exits 0."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TIMEOUT = 60.0  # seconds; each example takes a few

ARGS = {"main.py": ["--once"]}
"""Extra command-line arguments per example."""

EXPECTED = {
    "main.py": [
        "batch: 20 jobs ended",
        "--once: demo finished",
        "shutdown hook: flushed",
        "database: connection closed",
    ],
    "priorities.py": ["ran:       critical, high, int-15, normal-1, normal-2, normal-3, low"],
    "dedup.py": ["again:  Duplicate(existing_id=1)"],
    "debounce_and_pause.py": [
        "index ran 1 time(s), with ['final']",
        "then within the hour: Duplicate(existing_id=2)",
        "resumed: digest sent to grace",
    ],
    "children.py": ["'ok': ['docs/about', 'docs/api', 'docs/faq', 'docs/index']"],
    "standalone_worker.py": ["by worker process", "worker process exited with code 0"],
    "rate_limits.py": ["rate limited by api (key 'acme'): 10/s", "acme: 13 jobs started"],
    "sentry_middleware.py": [
        "reported ConnectionError: gateway timeout on attempt 2 {'job.id': '1', "
        "'job.type': 'billing::charge', 'job.attempt': '2', 'request_id': 'req-42'}",
        "charged 1250 cents for request req-42",
    ],
}
"""Lines (substrings) that must appear in an example's output."""


def test_examples_are_found() -> None:
    names = {path.name for path in EXAMPLES.glob("*.py")}
    assert {"main.py", *EXPECTED} <= names


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs_and_exits_0(name: str, tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    try:
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / name), *ARGS.get(name, [])],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            cwd=tmp_path,  # anything an example writes to its working directory lands here
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{name} did not finish within {TIMEOUT} s:\n{exc.stdout}\n{exc.stderr}")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{output}"
    for line in EXPECTED.get(name, []):
        assert line in output, f"{name}: {line!r} not in its output:\n{output}"
