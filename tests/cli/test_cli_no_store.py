"""Commands that read or control a store never create one: only `migrate` (and workers, `run`,
the Python API) do. Elsewhere a missing store is one line, "no store at ...", exit 1."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from cli_support import Cli, assert_one_line_error, run_in_process

from wireframe.store import NoStoreError, PostgresStore, SqliteStore, StoreURLError

from pg_support import drop_schema, new_schema_name, require_pg

COMMANDS = [
    ["jobs"],
    ["job", "1"],
    ["cancel", "1"],
    ["retry", "1"],
    ["pause", "1"],
    ["resume", "1"],
    ["purge", "--older-than", "1d"],
    ["submit", "media::resize"],
    ["top", "--once"],
    ["workers"],
]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    monkeypatch.delenv("WIREFRAME_STORE", raising=False)

    return lambda *args: run_in_process(capsys, *args)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_a_missing_sqlite_file_is_not_created(
    command: list[str], run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'dir' / 'x.db'}"
    result = run(*command, "--store", url)
    assert_one_line_error(result, 1, f"no store at {url}")
    assert not (tmp_path / "no").exists()

    monkeypatch.chdir(tmp_path)
    result = run(*command, "--store", "notaurl")
    assert_one_line_error(result, 1, "no store at sqlite:///notaurl")
    assert list(tmp_path.iterdir()) == []


def test_a_file_without_the_tables_is_no_store(run: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    result = run("jobs", "--store", str(empty))
    assert_one_line_error(result, 1, "no store at", "no wireframe tables")
    assert empty.read_bytes() == b""


def test_migrate_creates_the_store_and_then_commands_work(run: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'sub' / 'x.db'}"
    assert run("migrate", "--store", url).code == 0
    result = run("jobs", "--store", url, "--json")
    assert result.code == 0 and result.json() == [], result


@pytest.mark.anyio
async def test_the_python_api_opens_without_create_only_what_exists(tmp_path: Path) -> None:
    missing = SqliteStore(tmp_path / "x.db", create=False)
    with pytest.raises(NoStoreError, match="no store at"):
        await missing.open()
    assert not (tmp_path / "x.db").exists()
    async with SqliteStore(tmp_path / "x.db"):  # the default creates it
        pass
    async with SqliteStore(tmp_path / "x.db", create=False):
        pass


@pytest.mark.postgres
def test_a_postgresql_schema_without_tables_is_not_created(run: Cli) -> None:
    name = new_schema_name("wfnostore")
    url = f"{require_pg()}?schema={name}"
    try:
        for command in (["jobs"], ["cancel", "1"], ["submit", "a::b"]):
            result = run(*command, "--store", url)
            assert_one_line_error(result, 1, "no store at", repr(name))
        with psycopg.connect(require_pg()) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)
            ).fetchone()
        assert found is None
        assert run("migrate", "--store", url).code == 0
        assert run("jobs", "--store", url, "--json").json() == []
    finally:
        drop_schema(name)


@pytest.mark.parametrize("schema", ["information_schema", "pg_catalog", "pg_jobs", "Jobs", "a-b"])
def test_a_postgresql_schema_must_be_a_plain_identifier(schema: str, run: Cli) -> None:
    url = f"postgresql://postgres@127.0.0.1:1/test?schema={schema}"
    result = run("jobs", "--store", url)
    assert_one_line_error(result, 2, repr(schema))
    with pytest.raises(StoreURLError, match=repr(schema)):
        PostgresStore("postgresql://postgres@127.0.0.1:1/test", schema=schema)
