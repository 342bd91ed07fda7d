"""Debounce across processes: concurrent submitters of one key leave one waiting job."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from wireframe.store import JobState, store_from_url

from pg_support import drop_schema, new_schema_name, require_pg

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
COUNT = 150


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jobs.db'}"
        return
    schema = new_schema_name("wfdeb")
    try:
        yield f"{require_pg()}?schema={schema}"
    finally:
        drop_schema(schema)


def test_two_processes_debouncing_one_key_leave_one_job_with_a_last_payload(url: str) -> None:
    async def migrate() -> None:
        store = store_from_url(url)
        await store.open()
        await store.close()

    anyio.run(migrate)
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "debounce_submitter.py"), url, name, str(COUNT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        for name in ("a", "b")
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = []
        for proc in procs:
            assert proc.stdout is not None
            outputs.append(json.loads(proc.stdout.readline()))
            assert proc.wait(timeout=120) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    results = [tuple(r) for out in outputs for r in out]
    assert len(results) == 2 * COUNT
    ids = {job_id for job_id, _ in results}
    assert len(ids) == 1, f"the submissions went to several jobs: {sorted(ids)}"
    assert sum(not replaced for _, replaced in results) == 1, "more than one job was created"

    async def jobs() -> list[object]:
        store = store_from_url(url)
        await store.open()
        try:
            return list(await store.list_jobs())
        finally:
            await store.close()

    [job] = anyio.run(jobs)
    assert job.id in ids  # type: ignore[attr-defined]
    assert job.state is JobState.SCHEDULED  # type: ignore[attr-defined]
    # The last payload committed is the last one of one of the two processes.
    assert json.loads(job.payload) in ({"by": "a", "n": COUNT - 1}, {"by": "b", "n": COUNT - 1})  # type: ignore[attr-defined]
