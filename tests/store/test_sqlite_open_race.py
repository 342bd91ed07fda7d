"""Opening SQLite stores concurrently on one brand-new file: every opener waits its turn within
the busy timeout (other processes, other stores of the same process), and only a lock held past
it fails, with a StoreError naming the file and what was locked."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from wireframe.store import SqliteStore, StoreError
from wireframe.store.sql.schema import SCHEMA_VERSION

from store_support import submit

HERE = Path(__file__).parent
REPO = HERE.parent.parent
WAIT = 60.0


def contents(path: Path) -> tuple[list[int], list[tuple[int, str]]]:
    """The schema versions recorded in one database, and its jobs' ids and payloads."""
    conn = sqlite3.connect(path)
    try:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
        rows = conn.execute("SELECT id, payload FROM jobs ORDER BY id").fetchall()
    finally:
        conn.close()
    return versions, rows


PROCESSES, STORES = 4, 3
"""Opener processes, and stores each one opens at once (tasks), on every new file."""


@pytest.fixture
def openers() -> Iterator[list[subprocess.Popen[str]]]:
    """`sqlite_opener.py` processes, on asyncio and trio in turn, each ready for paths."""
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "sqlite_opener.py"),
                f"p{n}",
                ("asyncio", "trio")[n % 2],
                str(STORES),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for n in range(PROCESSES)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield procs
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.close()
            assert proc.wait(timeout=WAIT) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def open_everywhere(openers: list[subprocess.Popen[str]], path: Path) -> list[str]:
    """Have every opener open its stores on `path` at once; their replies."""
    for proc in openers:  # each process reads its line as soon as it is flushed
        assert proc.stdin is not None
        proc.stdin.write(f"{path}\n")
    for proc in openers:
        assert proc.stdin is not None
        proc.stdin.flush()
    replies = []
    for proc in openers:
        assert proc.stdout is not None
        replies.append(proc.stdout.readline().strip())
    return replies


@pytest.mark.slow
def test_stores_opened_at_once_on_a_new_file_by_processes_and_tasks_all_open_and_submit(
    openers: list[subprocess.Popen[str]], tmp_path: Path
) -> None:
    names = sorted(f"p{p}/{s}" for p in range(PROCESSES) for s in range(STORES))
    failures: list[str] = []
    for attempt in range(70):  # the old code failed ~1 file in 10
        path = tmp_path / f"new-{attempt}.db"
        replies = open_everywhere(openers, path)
        failed = [f"{path.name}: {r}" for r in replies if not r.startswith("ok ")]
        failures += failed
        if failed:
            continue
        versions, rows = contents(path)
        assert versions == list(range(1, SCHEMA_VERSION + 1)), path
        assert sorted(json.loads(p)["by"] for _, p in rows) == names, path  # each one, once
        reported = sorted(int(i) for r in replies for i in r.split()[1:])
        assert reported == [i for i, _ in rows], path
    assert not failures, f"{len(failures)} openers failed:\n" + "\n".join(failures)


@pytest.mark.anyio
async def test_opening_waits_for_a_writer_that_holds_a_new_file(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None)  # not yet in WAL mode
    try:
        other.execute("BEGIN IMMEDIATE")  # another process is writing the new file
        opened = anyio.Event()

        async def open_store() -> None:
            async with SqliteStore(path, busy_timeout=WAIT) as store:
                opened.set()
                await submit(store)

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(open_store)
                with anyio.move_on_after(0.5):  # the lock is held this long
                    await opened.wait()
                assert not opened.is_set()  # still waiting (not failed: that would raise here)
                other.execute("COMMIT")
    finally:
        other.close()
    assert contents(path)[0] == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("wal", "locked"),
    [(False, "switch the database to WAL"), (True, "take the write lock to check the schema")],
)
async def test_a_lock_held_past_the_busy_timeout_fails_with_a_store_error(
    tmp_path: Path, wal: bool, locked: str
) -> None:
    path = tmp_path / "held.db"
    if wal:
        async with SqliteStore(path):
            pass
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        store = SqliteStore(path, busy_timeout=0.2)
        start = anyio.current_time()
        with anyio.fail_after(WAIT), pytest.raises(StoreError) as info:
            await store.open()
        waited = anyio.current_time() - start
        other.execute("COMMIT")
    finally:
        other.close()
    message = str(info.value)
    assert str(path) in message and locked in message and "locked" in message
    assert "0.2 s" in message and waited >= 0.19
    async with SqliteStore(path) as store:  # nothing was left half-open
        await submit(store)
