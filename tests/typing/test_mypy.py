"""`mypy --strict` over a user's module: the typed API holds what it promises.

good_user.py must check clean; in bad_user.py every line marked `# E: <code>` must get exactly
that error, and no other line any. Marked `typing`: the default run leaves it out (mypy takes
seconds even with a warm cache); CI runs it with `pytest -m typing tests/typing`.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.typing

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
GOOD = HERE / "good_user.py"
BAD = HERE / "bad_user.py"

_ERROR = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): error: (?P<message>.*?)\s+\[(?P<code>[a-z-]+)\]$"
)
_EXPECTED = re.compile(r"#\s*E:\s*(?P<codes>[a-z-]+(?:\s*,\s*[a-z-]+)*)\s*$")


def run_mypy(*paths: Path) -> dict[tuple[str, int], set[str]]:
    """Errors by (file name, line): their codes. A user's settings: --strict, no config."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file=",
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "user-typing"),
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            *map(str, paths),
        ],
        cwd=HERE,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 2: mypy itself failed
    found: dict[tuple[str, int], set[str]] = defaultdict(set)
    for line in proc.stdout.splitlines():
        match = _ERROR.match(line)
        if match is not None:
            key = (Path(match["path"]).name, int(match["line"]))
            found[key].add(f"{match['code']}: {match['message']}")
        elif ": error: " in line:
            raise AssertionError(f"unparsed mypy error: {line}")
    return dict(found)


def expected_errors(path: Path) -> dict[tuple[str, int], set[str]]:
    expected: dict[tuple[str, int], set[str]] = {}
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        match = _EXPECTED.search(text)
        if match is not None:
            codes = {code.strip() for code in match["codes"].split(",")}
            expected[(path.name, number)] = codes
    return expected


@pytest.fixture(scope="module")
def reported() -> dict[tuple[str, int], set[str]]:
    return run_mypy(GOOD, BAD)  # one mypy run for both modules


def test_a_user_module_using_the_api_as_documented_is_clean_under_strict(
    reported: dict[tuple[str, int], set[str]],
) -> None:
    errors = {key: found for key, found in reported.items() if key[0] == GOOD.name}
    assert errors == {}


def test_mypy_strict_catches_each_mistake_of_a_user_module_and_nothing_else(
    reported: dict[tuple[str, int], set[str]],
) -> None:
    expected = expected_errors(BAD)
    assert len(expected) >= 10
    got = {
        key: {found.split(":", 1)[0] for found in messages}
        for key, messages in reported.items()
        if key[0] == BAD.name
    }
    missing = {key: codes for key, codes in expected.items() if got.get(key) != codes}
    unexpected = {key: codes for key, codes in got.items() if key not in expected}
    assert not missing and not unexpected, (
        f"marked lines mypy did not report as marked: {missing}\n"
        f"lines mypy reported but not marked: {unexpected}\n"
        f"all of mypy's errors: {reported}"
    )


def test_the_misspelt_submit_option_is_named_in_the_error(
    reported: dict[tuple[str, int], set[str]],
) -> None:
    messages = [m for key, found in reported.items() if key[0] == BAD.name for m in found]
    assert any('Unexpected keyword argument "priorty"' in m for m in messages), messages
