"""`wireframe workers`, and `wireframe job` saying why no live worker can take a pending job."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from cli_support import WAIT, Cli, Worker, in_process_cli, in_store, wait_until

from wireframe.store import NewJob, Store, WorkerInfo


def worker(worker_id: str, *, tags: tuple[str, ...] = (), ttl: float = 300.0) -> WorkerInfo:
    return WorkerInfo(
        worker_id=worker_id,
        host="box",
        pid=4242,
        domains=("media",),
        tags=tags,
        resources={"vram": 4},
        held=2,
        ttl=ttl,
    )


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    in_store(url, lambda store: store.workers())  # create it
    return url


@pytest.fixture
def run(url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return in_process_cli(url, capsys, monkeypatch, columns=80)


def put(url: str, *workers: WorkerInfo) -> None:
    async def go(store: Store) -> None:
        for w in workers:
            await store.put_worker(w, starting=True)

    in_store(url, go)


def submit(url: str, job: NewJob) -> int:
    async def go(store: Store) -> int:
        (result,) = await store.submit([job])
        return result.id

    job_id: int = in_store(url, go)
    return job_id


def test_workers_lists_live_then_lost(run: Cli, url: str) -> None:
    assert "no live workers" in run("workers").out
    put(url, worker("w-lost", ttl=0.0), worker("w-gpu", tags=("gpu",)))
    result = run("workers")
    assert result.code == 0, result
    assert "1 live worker(s)" in result.out and "1 lost" in result.out
    lines = result.out.splitlines()
    assert max(len(line) for line in lines) <= 80
    gpu = next(line for line in lines if "w-gpu" in line)
    assert gpu.split()[1:6] == ["box", "4242", "media", "gpu", "2"]
    assert "LOST" in next(line for line in lines if "w-lost" in line)
    data = run("workers", "--json").json()
    assert [(w["worker_id"], w["lost"]) for w in data] == [("w-gpu", False), ("w-lost", True)]
    assert data[0]["resources"] == {"vram": 4} and data[0]["held"] == 2


def test_a_pending_job_no_live_worker_can_take_says_why(run: Cli, url: str) -> None:
    gpu = submit(url, NewJob("media::resize", "media", "{}", tags=("gpu",)))
    other = submit(url, NewJob("other::x", "other", "{}"))
    big = submit(url, NewJob("media::big", "media", "{}", resources={"vram": 8}))
    plain = submit(url, NewJob("media::resize", "media", "{}"))

    assert "waits: no live worker: start one" in run("job", str(gpu)).out
    put(url, worker("w1"), worker("w-lost", tags=("gpu",), ttl=0.0))
    assert "waits: no live worker has tags gpu" in run("job", str(gpu)).out
    assert "waits: no live worker runs domain other" in run("job", str(other)).out
    assert "waits: no live worker has the resources vram=8" in run("job", str(big)).out
    shown = run("job", str(plain))
    assert "waits" not in shown.out and "can take it: w1" in shown.out
    assert run("job", str(gpu), "--json").json()["workers"] == {
        "can_take": [],
        "why_not": "no live worker has tags gpu (of domain media)",
    }
    put(url, worker("w2", tags=("gpu", "eu")))
    assert run("job", str(gpu), "--json").json()["workers"]["can_take"] == ["w2"]


@pytest.mark.slow
def test_a_worker_process_records_itself_and_leaves_at_stop(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    proc = Worker(url, "--app", "cli_app:scheduler", "--tags", "gpu,eu", "--worker-id", "w-7")
    try:
        proc.record("worker w-7")

        def listed() -> list[WorkerInfo]:
            return [w.info for w in in_store(url, lambda store: store.workers())]

        (info,) = wait_until(listed, "the worker's row")
        assert info.worker_id == "w-7" and info.pid == proc.popen.pid
        assert info.domains == ("demo",) and set(info.tags) == {"gpu", "eu"}
        proc.popen.send_signal(signal.SIGTERM)
        assert proc.popen.wait(timeout=WAIT) == 0
        assert listed() == []
    finally:
        proc.kill()
