"""A store the command cannot open: exactly one line on stderr, naming the store's URL once.

Real processes (`python -m wireframe ...`) against a closed loopback port, a role and a database
the shared server does not have, and SQLite paths that cannot be a database. Nothing comes
before the line (no warnings of the connection pool), the password stays out of it, exit code 1,
no traceback; a refused connection fails at once instead of retrying until `connect_timeout`.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cli_support import HERE, WAIT, Result, cli_env

from pg_support import require_pg
from private_pg import spare_port


def run(*args: str) -> Result:
    """`python -m wireframe ARGS` (no $WIREFRAME_STORE), within WAIT seconds.

    A refusal must fail at once: the URLs below give `connect_timeout=300`, so a command that
    retried a refused connection instead would outlast WAIT and fail the test.
    """
    proc = subprocess.run(
        [sys.executable, "-m", "wireframe", *args],
        capture_output=True,
        text=True,
        env=cli_env(None),
        cwd=HERE,
        timeout=WAIT,
    )
    return Result(proc)


def assert_one_line(result: Result, shown_url: str, detail: str) -> None:
    """Exit 1, nothing on stdout, and on stderr only `cannot open store <url>: <detail>`."""
    assert result.code == 1, result
    assert result.out == "", result
    assert result.err == f"wireframe: error: cannot open store {shown_url}: {detail}\n", result


def server() -> str:
    """host:port of the shared test server."""
    parts = urlsplit(require_pg())
    return f"{parts.hostname}:{parts.port or 5432}"


@pytest.fixture
def app(tmp_path: Path) -> str:
    """A worker app in a file (one domain)."""
    path = tmp_path / "app.py"
    path.write_text("from wireframe import Domain\n\nd = Domain('d')\n")
    return str(path)


@pytest.mark.parametrize("command", ["jobs", "worker"])
def test_an_unreachable_server(command: str, app: str) -> None:
    url = f"postgresql://postgres@127.0.0.1:{spare_port()}/test?connect_timeout=1"
    args = ["--app", app] if command == "worker" else []
    result = run(command, "--store", url, *args)
    assert_one_line(result, url, "cannot connect to PostgreSQL within 1 s: Connection refused")


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["jobs", "worker"])
def test_an_unknown_role_is_refused_at_once(command: str, app: str) -> None:
    role = f"wf_nobody_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://{role}:s3cret@{server()}/test?connect_timeout=300"
    args = ["--app", app] if command == "worker" else []
    result = run(command, "--store", url, *args)
    shown = url.replace("s3cret", "***")
    detail = f'PostgreSQL refused the connection: role "{role}" does not exist'
    assert_one_line(result, shown, detail)


@pytest.mark.postgres
def test_a_missing_database_is_refused_at_once() -> None:
    db = f"wf_missing_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://postgres@{server()}/{db}?connect_timeout=300"
    result = run("jobs", "--store", url)
    assert_one_line(
        result, url, f'PostgreSQL refused the connection: database "{db}" does not exist'
    )


def test_a_sqlite_directory_that_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    path = tmp_path / "file" / "sub" / "jobs.db"
    url = f"sqlite:///{path}"
    result = run("migrate", "--store", url)
    parent, blocker = str(path.parent), str(tmp_path / "file")
    detail = f"cannot create the directory {parent!r}: {blocker!r} is a file"
    assert_one_line(result, url, detail)


def test_a_sqlite_path_that_is_a_directory(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}"
    result = run("migrate", "--store", url)
    assert_one_line(result, url, f"{str(tmp_path)!r} is a directory, not a database file")
