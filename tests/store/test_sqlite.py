"""SQLite-specific behaviour: WAL, migrations, URLs, several connections and processes on a file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest

from wireframe.store import (
    Complete,
    JobState,
    MemoryStore,
    SchemaVersionError,
    SqliteStore,
    StoreURLError,
    store_from_url,
)
from wireframe.store.sql.schema import SCHEMA_VERSION

from store_support import claim_ids, job, request, submit

HERE = Path(__file__).parent
REPO = HERE.parent.parent


@pytest.mark.anyio
async def test_wal_mode_and_migrations_recorded(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SqliteStore(path):
        pass
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    finally:
        conn.close()
    assert versions == list(range(1, SCHEMA_VERSION + 1))


@pytest.mark.anyio
async def test_reopen_keeps_data_and_runs_no_migration_twice(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SqliteStore(path) as store:
        job_id = await submit(store, payload='{"keep": true}')
    async with SqliteStore(path) as store:
        record = await store.get(job_id)
        assert record is not None and record.payload == '{"keep": true}'
        assert await submit(store) > job_id
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    finally:
        conn.close()


@pytest.mark.anyio
async def test_newer_schema_fails_to_open(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SqliteStore(path):
        pass
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION + 41,))
    conn.commit()
    conn.close()
    store = SqliteStore(path)
    with pytest.raises(SchemaVersionError) as info:
        await store.open()
    message = str(info.value)
    assert str(SCHEMA_VERSION + 41) in message and str(SCHEMA_VERSION) in message
    assert str(path) in message
    with pytest.raises(Exception, match="not open"):
        await store.get(1)


@pytest.mark.anyio
async def test_store_used_before_open_says_so(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "jobs.db")
    with pytest.raises(Exception, match="open"):
        await store.submit([job()])


def test_store_from_url_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    memory = store_from_url("memory://")
    assert isinstance(memory, MemoryStore) and memory.url == "memory://"
    relative = store_from_url("sqlite:///rel.db")
    assert isinstance(relative, SqliteStore) and relative.path == "rel.db"
    absolute = store_from_url(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SqliteStore) and absolute.path == f"{tmp_path}/abs.db"
    assert store_from_url("sqlite:////abs.db").path == "/abs.db"  # type: ignore[attr-defined]
    bare = store_from_url("data/jobs.db")
    assert isinstance(bare, SqliteStore) and bare.path == "data/jobs.db"
    from_path = store_from_url(tmp_path / "p.db")
    assert isinstance(from_path, SqliteStore) and from_path.path == str(tmp_path / "p.db")


@pytest.mark.parametrize("url", ["redis://localhost/0", "sqlite://", "sqlite://relative.db", ""])
def test_bad_store_urls(url: str) -> None:
    with pytest.raises(StoreURLError) as info:
        store_from_url(url)
    if url:
        assert url in str(info.value)


@pytest.mark.anyio
async def test_sqlite_url_store_opens_a_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = store_from_url("sqlite:///sub/rel.db")
    await store.open()
    try:
        await submit(store)
    finally:
        await store.close()
    assert (tmp_path / "sub" / "rel.db").exists()


@pytest.mark.anyio
async def test_two_stores_on_one_file_see_each_others_writes(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SqliteStore(path) as one, SqliteStore(path) as two:
        ids = [r.id for r in await one.submit([job() for _ in range(6)])]
        got_two = await claim_ids(two, limit=3, worker="two")
        got_one = await claim_ids(one, limit=10, worker="one")
        assert got_two == ids[:3] and got_one == ids[3:]
        [record] = [j for j in await one.list_jobs(states=[JobState.RUNNING]) if j.id == ids[0]]
        assert record.worker_id == "two"
        assert await two.finish([Complete(record.lease, '"x"')]) == [True]
        seen = await one.get(ids[0])
        assert seen is not None and seen.state is JobState.COMPLETED


@pytest.mark.anyio
async def test_wait_for_work_wakes_on_another_stores_commit(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    async with SqliteStore(path) as one, SqliteStore(path) as two:
        woke = anyio.Event()

        async def wait() -> None:
            await one.wait_for_work(30.0)
            woke.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(wait)
                await anyio.wait_all_tasks_blocked()
                assert not woke.is_set()
                await submit(two)
                await woke.wait()


@pytest.mark.anyio
async def test_concurrent_claims_on_one_store_never_overlap(tmp_path: Path) -> None:
    async with SqliteStore(tmp_path / "jobs.db") as store:
        ids = [r.id for r in await store.submit([job() for _ in range(300)])]
        taken: list[int] = []

        async def worker(name: str) -> None:
            while jobs := await store.claim(request(limit=7, worker=name)):
                taken.extend(j.id for j in jobs)
                assert all(await store.finish([Complete(j.lease, None) for j in jobs]))

        async with anyio.create_task_group() as tg:
            for n in range(8):
                tg.start_soon(worker, f"w{n}")
        assert sorted(taken) == ids


@pytest.mark.slow
def test_several_processes_complete_every_job_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "jobs.db"
    total, processes = 2000, 4

    async def setup() -> list[int]:
        async with SqliteStore(path) as store:
            return [r.id for r in await store.submit([job() for _ in range(total)])]

    ids = anyio.run(setup)
    env = {"PYTHONPATH": str(REPO)}
    procs = []
    logs = [tmp_path / f"claims-{n}.log" for n in range(processes)]
    for n, log in enumerate(logs):
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HERE / "sqlite_claimer.py"), str(path), f"p{n}", str(log)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env={**os.environ, **env},
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        for proc in procs:
            assert proc.wait(timeout=60) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    claims: Counter[int] = Counter()
    per_process = []
    for log in logs:
        lines = log.read_text().split()
        entries = [tuple(map(int, lines[i : i + 3])) for i in range(0, len(lines), 3)]
        per_process.append(len(entries))
        for job_id, claim_seq, attempt in entries:
            assert (claim_seq, attempt) == (1, 1)
            claims[job_id] += 1
    assert sorted(claims) == ids
    assert set(claims.values()) == {1}, "a job was claimed twice"

    conn = sqlite3.connect(path)
    try:
        states = conn.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall()
        attempts = conn.execute(
            "SELECT count(*), count(DISTINCT job_id), max(attempt) FROM attempts"
        ).fetchone()
        workers = {r[0] for r in conn.execute("SELECT DISTINCT worker_id FROM attempts")}
    finally:
        conn.close()
    assert states == [("completed", total)]
    assert attempts == (total, total, 1)
    assert workers <= {f"p{n}" for n in range(processes)}
    print("claims per process:", per_process)


@pytest.mark.anyio
async def test_wait_for_work_wakes_on_another_connections_commit_not_on_its_own(
    tmp_path: Path,
) -> None:
    path = tmp_path / "wake.db"
    worker, client = SqliteStore(path), SqliteStore(path)
    await worker.open()
    await client.open()
    try:
        assert await claim_ids(worker) == []
        # This store's own commit (a submit after its claim) is not news to it...
        await submit(worker)
        started = anyio.current_time()
        await worker.wait_for_work(0.2)
        assert anyio.current_time() - started >= 0.2
        assert len(await claim_ids(worker)) == 1
        # ...but another connection's commit, even one made before the wait began, is.
        await submit(client)
        with anyio.fail_after(10):
            await worker.wait_for_work(60)
        assert len(await claim_ids(worker)) == 1
    finally:
        await worker.close()
        await client.close()


@pytest.mark.anyio
async def test_a_held_write_lock_sends_work_to_a_thread_and_the_loop_keeps_running(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    store = SqliteStore(path)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        done = anyio.Event()
        ids: list[int] = []

        async def submit_one() -> None:
            ids.append(await submit(store))
            done.set()

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(submit_one)
                await anyio.wait_all_tasks_blocked()  # reached only if the loop is not blocked
                assert not done.is_set()
                other.execute("COMMIT")
                await done.wait()
        assert len(ids) == 1
        assert await store.get(ids[0]) is not None
    finally:
        other.close()
        await store.close()


@pytest.mark.anyio
async def test_the_wal_is_checkpointed_every_so_many_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import wireframe.store.sqlite as sqlite_module

    monkeypatch.setattr(sqlite_module, "CHECKPOINT_EVERY", 20)
    path = tmp_path / "wal.db"
    store = SqliteStore(path)
    await store.open()
    try:
        for _ in range(400):
            await submit(store)
        wal = Path(f"{path}-wal")
        # 400 commits of a page or more each would make a WAL of well over 1.6 MB
        assert wal.stat().st_size < 1_000_000
    finally:
        await store.close()
