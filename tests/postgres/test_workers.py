"""Worker processes on the real PostgreSQL server: crashes, lost connections, routing, aging,
control across processes; and several worker processes on one SQLite file."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import anyio
import pytest
from pg_app import Hold, Rec, t

from wireframe import JobState, Priority, Scheduler
from wireframe.store import PostgresStore

from cluster_support import Cluster, wait_until


def client(cluster: Cluster) -> Scheduler:
    """A submit-only scheduler on the test's schema."""
    return Scheduler(PostgresStore(cluster.url), domains=[t], worker=False)


async def submit_recs(cluster: Cluster, n: int, **kw: object) -> list[int]:
    s = client(cluster)
    await s.open()
    try:
        out = await s.submit_many([Rec(i) for i in range(n)], **kw)
        return [o.id for o in out]
    finally:
        await s.close()


def done_count(cluster: Cluster) -> int:
    return int(cluster.sql("SELECT count(*) FROM jobs WHERE state = 'completed'")[0][0])


def runs(cluster: Cluster) -> list[tuple[int, int, str]]:
    return [(r[0], r[1], r[2]) for r in cluster.sql("SELECT job_id, attempt, worker FROM runs")]


def test_sigkill_one_of_four_workers_loses_nothing(cluster: Cluster, tmp_path: Path) -> None:
    n = 10_000
    ids = anyio.run(submit_recs, cluster, n)
    for i in range(4):
        cluster.start(f"w{i}", tmp=tmp_path, WF_CLAIM_TTL=1.0, WF_CONCURRENCY=16)
    wait_until(lambda: len(runs(cluster)) >= 2_000, 60, "2,000 runs", cluster)
    cluster.kill("w0")
    wait_until(lambda: done_count(cluster) == n, 60, "every job completed", cluster)
    all_runs = runs(cluster)
    assert {r[0] for r in all_runs} == set(ids)
    assert len({(r[0], r[1]) for r in all_runs}) == len(all_runs), "an attempt ran twice"
    counts = Counter(r[0] for r in all_runs)
    twice = {job for job, c in counts.items() if c > 1}
    first_by: dict[int, str] = {}
    for job_id, _attempt, worker in sorted(all_runs, key=lambda r: r[1]):
        first_by.setdefault(job_id, worker)
    others = sorted(j for j in twice if first_by[j] != "w0")
    assert not others, cluster.sql(
        "SELECT job_id, attempt, worker_id, outcome, error FROM attempts WHERE job_id = ANY(%s) "
        "ORDER BY job_id, attempt LIMIT 20",
        (others,),
    )
    # In flight at the kill: w0's running handlers (16) and the finished ones whose completion
    # was not written yet, which the worker keeps to at most its concurrency again.
    assert len(twice) <= 2 * 16, twice
    # The reclaimed attempts carry the reason.
    if twice:
        reasons = cluster.sql(
            "SELECT outcome, error FROM attempts WHERE job_id = ANY(%s) AND attempt = 1",
            (list(twice),),
        )
        assert all(o == "lease_expired" and "w0" in e for o, e in reasons), reasons


def test_terminated_connections_reconnect_and_finish(cluster: Cluster, tmp_path: Path) -> None:
    n = 3_000
    ids = anyio.run(submit_recs, cluster, n)
    for i in range(2):
        cluster.start(f"w{i}", tmp=tmp_path, WF_CLAIM_TTL=5.0)
    wait_until(lambda: len(runs(cluster)) >= 500, 30, "500 runs", cluster)
    killed = cluster.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
        (cluster.app_name,),
    )[0][0]
    assert killed >= 2  # every worker's pool and listener
    wait_until(lambda: done_count(cluster) == n, 60, "every job completed", cluster)
    all_runs = runs(cluster)
    assert {r[0] for r in all_runs} == set(ids)
    assert len({(r[0], r[1]) for r in all_runs}) == len(all_runs), "an attempt ran twice"
    assert all(p.poll() is None for p in cluster.procs.values()), cluster.output()


def test_tags_route_jobs_to_the_workers_that_have_them(cluster: Cluster, tmp_path: Path) -> None:
    async def submit() -> tuple[list[int], list[int]]:
        s = client(cluster)
        await s.open()
        try:
            gpu = [(await s.submit(Rec(i), tags=["gpu"])).id for i in range(20)]
            plain = [o.id for o in await s.submit_many([Rec(i) for i in range(20)])]
            return gpu, plain
        finally:
            await s.close()

    gpu, plain = anyio.run(submit)
    cluster.start("cpu", tmp=tmp_path)
    cluster.start("gpu", "--tags", "gpu", tmp=tmp_path)
    wait_until(lambda: done_count(cluster) == 40, 30, "every job completed", cluster)
    by_job = {job: worker for job, _, worker in runs(cluster)}
    assert {by_job[j] for j in gpu} == {"gpu"}
    assert set(by_job) == set(gpu) | set(plain)


def test_aging_lets_a_low_priority_job_through_a_stream_of_high_ones(
    cluster: Cluster, tmp_path: Path
) -> None:
    async def scenario() -> tuple[int, int]:
        s = client(cluster)
        await s.open()
        try:
            first = await s.submit_many(
                [Rec(i, sleep=0.02) for i in range(20)], priority=Priority.HIGH
            )
            low = (await s.submit(Rec(-1), priority=Priority.LOW)).id
            cluster.start("w", tmp=tmp_path, WF_AGING=0.2, WF_CONCURRENCY=1)
            highs = [o.id for o in first]
            with anyio.fail_after(20):
                while (await s.store.get(low)).state is not JobState.COMPLETED:  # type: ignore[union-attr]
                    # The stream: high-priority jobs keep arriving faster than they run.
                    out = await s.submit_many(
                        [Rec(0, sleep=0.02) for _ in range(3)], priority=Priority.HIGH
                    )
                    highs.extend(o.id for o in out)
                    await anyio.sleep(0.02)
            pending = sum(
                1
                for j in await s.store.list_jobs(states=[JobState.PENDING], limit=10_000)
                if j.id in set(highs)
            )
            return low, pending
        finally:
            await s.close()

    _low, pending_highs = anyio.run(scenario)
    assert pending_highs > 0  # it got through while high-priority work was still waiting


def test_paused_tree_does_not_run_and_resumed_finishes(cluster: Cluster, tmp_path: Path) -> None:
    async def scenario() -> None:
        s = client(cluster)
        await s.open()
        try:
            root = (await s.submit(Rec(0))).id
            kids = [(await s.submit(Rec(i), parent=root)).id for i in range(1, 4)]
            assert await s.store.pause(root) == 4
            cluster.start("w", tmp=tmp_path)
            # A job submitted after the tree runs: the worker is past the paused tree.
            sentinel = (await s.submit(Rec(99))).id
            await s.result(sentinel, timeout=20)
            for job_id in (root, *kids):
                assert (await s.store.get(job_id)).state is JobState.PAUSED  # type: ignore[union-attr]
            assert await s.store.resume(root) == 4
            for job_id in (root, *kids):
                await s.result(job_id, timeout=20)
        finally:
            await s.close()

    anyio.run(scenario)
    assert {r[0] for r in runs(cluster)} == set(range(1, 6))


@pytest.mark.parametrize("action", ["cancel", "pause"])
def test_control_from_another_process_reaches_a_running_job(
    cluster: Cluster, tmp_path: Path, action: str
) -> None:
    async def scenario() -> float:
        s = client(cluster)
        await s.open()
        try:
            job_id = (await s.submit(Hold(1))).id
            cluster.start("w", tmp=tmp_path, WF_CLAIM_TTL=2.0)  # heartbeat every 0.5 s
            with anyio.fail_after(20):
                while (await s.store.get(job_id)).state is not JobState.RUNNING:  # type: ignore[union-attr]
                    await anyio.sleep(0.02)
            started = anyio.current_time()
            await getattr(s.store, action)(job_id)
            want = JobState.CANCELLED if action == "cancel" else JobState.PAUSED
            with anyio.fail_after(20):
                while (await s.store.get(job_id)).state is not want:  # type: ignore[union-attr]
                    await anyio.sleep(0.02)
            return anyio.current_time() - started
        finally:
            await s.close()

    took = anyio.run(scenario)
    assert took < 0.5 + 0.5, f"{action} took {took:.2f} s (heartbeat 0.5 s)"


def test_workers_on_one_sqlite_file_never_run_a_job_twice(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    url = f"sqlite:///{db}"
    record = tmp_path / "runs.txt"
    record.touch()

    async def submit() -> list[int]:
        s = Scheduler(url, domains=[t], worker=False)
        await s.open()
        try:
            # Each job takes a moment (1,500 x 20 ms over 16 slots is about 2 s for one process
            # alone), so the first process to start cannot finish them all before the others
            # are up: the work is shared whatever the start-up order.
            jobs = [Rec(i, sleep=0.02) for i in range(1500)]
            return [o.id for o in await s.submit_many(jobs)]
        finally:
            await s.close()

    ids = anyio.run(submit)
    c = Cluster("unused")
    try:
        for i in range(3):
            c.start(f"s{i}", tmp=tmp_path, store=url, WF_RECORD_FILE=record, WF_CLAIM_TTL=60)

        def finished() -> bool:
            return len(record.read_text().splitlines()) >= len(ids)

        wait_until(finished, 60, "every job recorded", c)

        async def states() -> Counter[JobState]:
            s = Scheduler(url, domains=[t], worker=False)
            await s.open()
            try:
                return Counter(j.state for j in await s.store.list_jobs(limit=10_000))
            finally:
                await s.close()

        wait_until(lambda: anyio.run(states)[JobState.COMPLETED] == len(ids), 30, "completions", c)
    finally:
        c.stop_all()
    lines = [line.split() for line in record.read_text().splitlines()]
    seen = Counter(int(parts[0]) for parts in lines)
    assert set(seen) == set(ids)
    assert max(seen.values()) == 1, [j for j, k in seen.items() if k > 1][:10]
    assert len({parts[3] for parts in lines}) >= 2  # the work really was shared
