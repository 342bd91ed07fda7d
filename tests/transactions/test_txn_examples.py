"""The transaction examples run and show what they promise: the rolled-back order leaves no job,
and each durable step's rows are written once although the job ran twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pg_support import require_pg

pytestmark = pytest.mark.slow
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str, tmp_path: Path, **env: str) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{output}"
    return proc.stdout


def test_transactional_steps_write_once(tmp_path: Path) -> None:
    out = run("transactional_steps.py", tmp_path)
    assert "handler runs: 2" in out
    assert "ledger: [(7, 'charged'), (7, 'receipt')]" in out
    assert "balance: 70" in out


@pytest.mark.postgres
def test_outbox_commits_the_order_and_its_job_together(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    dsn = require_pg()
    out = run("outbox_fastapi.py", tmp_path, DATABASE_URL=dsn)
    assert "order refused: 409" in out
    assert "orders: 1, jobs: 1, confirmations: [(1, 'ada@example.com')]" in out
