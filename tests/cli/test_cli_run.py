"""`wireframe run path/to/main.py`: a module-level Service, or a factory function annotated to
return one; errors name the file the user gave, not an internal module name."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from cli_support import ROOT, WAIT, assert_one_line_error, cli_env, run_in_process


def test_errors_name_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.py"
    path.write_text("def main() -> int:\n    return 0\n")
    result = run_in_process(capsys, "run", str(path))
    assert_one_line_error(result, 2, "app.py has no wireframe Service", "-> Service")
    assert "__wireframe_app__" not in result.err and "no a " not in result.err
    result = run_in_process(capsys, "run", f"{path}:nope")
    assert_one_line_error(result, 2, "app.py has no attribute 'nope'")
    assert "__wireframe_app__" not in result.err


def test_two_factories_are_ambiguous(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "app.py"
    path.write_text(
        textwrap.dedent("""\
        from wireframe import Service

        def one() -> Service:
            return Service("one")

        def two(name: str = "two") -> Service:
            return Service(name)

        def needs(name: str) -> Service:  # takes an argument: not a candidate
            return Service(name)
        """)
    )
    result = run_in_process(capsys, "run", str(path))
    assert_one_line_error(result, 2, "several candidates (one, two)")


@pytest.mark.slow
def test_the_example_main_runs(tmp_path: Path) -> None:
    """`wireframe run examples/main.py` builds the demo through its `build_service()` factory
    and runs it until SIGINT, like `python examples/main.py`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "wireframe", "run", str(ROOT / "examples" / "main.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(None),
        cwd=tmp_path,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # the demo's ticker prints once its precondition is met
            if line.startswith("tick"):
                break
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        assert "shutdown hook: flushed" in out
        assert (tmp_path / "wireframe-demo.db").exists()
    finally:
        proc.kill()
        proc.wait()
