"""Control, submit, migrate and purge through the command, checked through the store."""

from __future__ import annotations

import time
from pathlib import Path

from cli_support import Cli, assert_one_line_error, in_store

from wireframe.store import JobRecord, JobState, Store


async def _get(store: Store, job_id: int) -> JobRecord:
    job = await store.get(job_id)
    assert job is not None
    return job


async def _state(store: Store, job_id: int) -> JobState:
    job = await store.get(job_id)
    assert job is not None
    return job.state


def test_migrate_creates_the_schema(cli: Cli, store_url: str, tmp_path: Path) -> None:
    result = cli("migrate")
    assert result.code == 0 and "up to date" in result.out, result
    assert cli("migrate", "--json").json() == {"store": store_url, "migrated": True}
    assert cli("jobs", "--json").json() == []
    bad = cli("migrate", store=str(tmp_path))  # a directory is not a database file
    assert_one_line_error(bad, 1, "cannot open store")


def test_submit_validates_and_writes_to_the_store(cli: Cli, wf: Cli, store_url: str) -> None:
    assert wf("migrate").code == 0
    result = cli("submit", "media::resize", "--payload", '{"path": "a.jpg", "width": 300}')
    assert result.code == 0 and "submitted job 1 (media::resize)" in result.out, result
    data = cli(
        "submit",
        "media::resize",
        "--payload",
        "{}",
        "--priority",
        "high",
        "--delay",
        "1h",
        "--key",
        "k1",
        "--tags",
        "gpu,eu",
        "--max-attempts",
        "3",
        "--json",
    ).json()
    assert data == {"id": 2, "type": "media::resize", "duplicate": False}
    assert_one_line_error(cli("submit", "a::b", "--payload", "[1, 2]"), 2, "JSON object", "list")
    cli = wf
    again = cli("submit", "media::resize", "--key", "k1", "--json").json()
    assert again == {"id": 2, "type": "media::resize", "duplicate": True}

    job = in_store(store_url, _get, 2)
    assert job.state is JobState.SCHEDULED and job.priority == 20 and job.key == "k1"
    assert job.tags == ("eu", "gpu") or set(job.tags) == {"eu", "gpu"}
    assert job.max_attempts == 3 and job.run_at > time.time() + 3000
    first = in_store(store_url, _get, 1)
    assert first.domain == "media" and first.state is JobState.PENDING
    dep = cli("submit", "media::after", "--depends-on", "1", "--json").json()
    assert in_store(store_url, _state, dep["id"]) is JobState.BLOCKED

    assert_one_line_error(cli("submit", "resize"), 2, "'resize'", "domain::name")
    assert_one_line_error(cli("submit", "me dia::x"), 2, "'me dia'")
    assert_one_line_error(cli("submit", "a::b", "--payload", "{bad"), 2, "not valid JSON")
    assert_one_line_error(cli("submit", "a::b", "--priority", "urgent"), 2, "'urgent'")
    assert_one_line_error(cli("submit", "a::b", "--delay", "soon"), 2, "'soon'")
    assert_one_line_error(cli("submit", "a::b", "--depends-on", "77"), 1, "77")
    assert len(cli("jobs", "--json").json()) == 3


def test_cancel_pause_resume_retry(
    cli: Cli, wf: Cli, store_url: str, seeded: dict[str, int]
) -> None:
    pending, blocked = seeded["pending"], seeded["blocked"]
    result = cli("pause", str(pending))
    assert result.code == 0 and f"job {pending}: 1 job(s) paused" in result.out, result
    assert in_store(store_url, _state, pending) is JobState.PAUSED
    assert cli("resume", str(pending), "--json").json() == {
        "id": pending,
        "action": "resume",
        "resumed": 1,
        "job_state": "pending",
    }
    assert in_store(store_url, _state, pending) is JobState.PENDING

    cancelled = cli("cancel", str(pending), "--json").json()
    assert cancelled["state"] == "cancelled" and cancelled["job_state"] == "cancelled"
    assert in_store(store_url, _state, blocked) is JobState.CANCELLED  # the cascade

    retried = cli("retry", str(seeded["boom"]))
    assert retried.code == 0 and "queued to run again" in retried.out, retried
    assert in_store(store_url, _state, seeded["boom"]) is JobState.PENDING

    assert_one_line_error(cli("retry", str(seeded["ok"])), 1, "cannot retry", str(seeded["ok"]))
    cli = wf
    assert_one_line_error(cli("resume", str(seeded["ok"])), 1, "cannot resume")
    for action in ("cancel", "pause", "resume", "retry"):
        assert_one_line_error(cli(action, "4242"), 1, "no job with id 4242")
        assert_one_line_error(cli(action, "x1"), 2, "'x1'")


def test_purge_deletes_old_ended_jobs(
    cli: Cli, wf: Cli, store_url: str, seeded: dict[str, int]
) -> None:
    assert wf("purge", "--older-than", "7d", "--json").json()["deleted"] == 0
    result = cli("purge", "--older-than", "0s")
    assert result.code == 0 and "deleted 4 ended job(s)" in result.out, result
    left = {row["id"] for row in cli("jobs", "--json").json()}
    assert left == {seeded["pending"], seeded["blocked"]}
    assert_one_line_error(cli("purge", "--older-than", "7x"), 2, "--older-than", "'7x'")
    cli = wf
    for bad in ("7x", "seven days", "-1d", "1d2"):
        assert_one_line_error(cli("purge", f"--older-than={bad}"), 2, "--older-than", repr(bad))
    assert_one_line_error(cli("purge"), 2, "--older-than")
