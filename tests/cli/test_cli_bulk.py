"""cancel/retry/pause/resume on several ids or a filter, and purge's filters and dry run.

In-process (`wireframe.cli.main`) on a SQLite file: what is tested is the command's selection,
reporting and exit code; the store operations themselves have their own conformance suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Cli, in_process_cli, in_store

from wireframe.store import NewJob, Store


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A store with jobs 1-3 of domain media and 4 of domain other, all cancelled, and job 5
    (media) pending."""

    async def seed(store: Store) -> None:
        for domain in ("media", "media", "media", "other", "media"):
            await store.submit([NewJob(f"{domain}::resize", domain, "{}")])
        for job_id in (1, 2, 3, 4):
            await store.cancel(job_id)

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    in_store(url, seed)
    return url


@pytest.fixture
def run(url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return in_process_cli(url, capsys, monkeypatch, columns=160)


def states(url: str) -> dict[int, str]:
    async def read(store: Store) -> dict[int, str]:
        return {job.id: job.state.value for job in await store.list_jobs()}

    result: dict[int, str] = in_store(url, read)
    return result


def test_retry_by_filter_reports_each_job_and_a_summary(run: Cli, url: str) -> None:
    result = run("retry", "--state", "cancelled", "--domain", "media")
    assert result.code == 0, result
    for job_id in (1, 2, 3):
        assert f"job {job_id}: queued to run again" in result.out
    assert "3 of 3 job(s) done, 0 refused" in result.out
    assert states(url) == {1: "pending", 2: "pending", 3: "pending", 4: "cancelled", 5: "pending"}

    # a filter without --state takes the states the action applies to
    data = run("cancel", "--domain", "media", "--json").json()
    assert [j["id"] for j in data["jobs"]] == [1, 2, 3, 5]
    assert data["done"] == 4 and data["failed"] == 0
    assert run("retry", "--type", "other::resize", "--json").json()["done"] == 1


def test_several_ids_exit_non_zero_if_one_is_refused(run: Cli, url: str) -> None:
    result = run("retry", "1", "5", "77", "2")
    assert result.code == 1, result
    assert "job 1: queued to run again" in result.out
    assert "job 2: queued to run again" in result.out
    assert "2 of 4 job(s) done, 2 refused" in result.out
    errors = result.err.strip().splitlines()
    assert errors == [
        "wireframe: error: cannot retry job 5: it is pending; only failed, cancelled, expired "
        "or dependency_failed jobs can be retried",
        f"wireframe: error: no job with id 77 in {url}",
    ]
    assert states(url)[1] == "pending" and states(url)[2] == "pending"
    data = run("pause", "1", "4", "--json").json()
    assert data["done"] == 1 and data["failed"] == 1
    assert data["jobs"][1] == {"id": 4, "ok": False, "error": data["jobs"][1]["error"]}
    assert data["jobs"][1]["error"] == "cannot pause job 4: it has already ended (cancelled)"


def test_one_refused_job_is_one_line_without_a_repeated_prefix(run: Cli) -> None:
    result = run("retry", "5")
    assert result.code == 1 and result.out == "", result
    assert result.err.startswith("wireframe: error: cannot retry job 5: it is pending;"), result
    assert "retry:" not in result.err and result.err.count("job 5") == 1
    resumed = run("resume", "4")
    assert resumed.err == (
        "wireframe: error: cannot resume job 4: it has already ended (cancelled)\n"
    ), resumed


def test_ids_and_a_filter_do_not_mix(run: Cli) -> None:
    for args in (["cancel"], ["retry", "1", "--state", "failed"]):
        result = run(*args)
        assert result.code == 2 and "filter" in result.err, result


def test_purge_by_state_and_domain_with_a_dry_run(run: Cli, url: str) -> None:
    result = run("purge", "--older-than", "0s", "--domain", "media", "--dry-run")
    assert result.code == 0 and "would delete 3 ended job(s) of domain media" in result.out
    assert len(states(url)) == 5
    data = run("purge", "--older-than=0s", "--state", "cancelled", "--dry-run", "--json").json()
    assert data["would_delete"] == 4
    assert run("purge", "--older-than", "0s", "--state", "failed", "--json").json()["deleted"] == 0
    result = run("purge", "--older-than", "0s", "--state", "cancelled", "--domain", "other")
    assert result.code == 0 and "deleted 1 cancelled job(s) of domain other" in result.out
    assert states(url) == {1: "cancelled", 2: "cancelled", 3: "cancelled", 5: "pending"}
    bad = run("purge", "--older-than", "0s", "--state", "pending")
    assert bad.code == 2 and "pending" in bad.err, bad


def test_no_message_says_its_prefix_twice(run: Cli) -> None:
    payload = '{"path": "a.jpg", "width": 300}'
    result = run(
        "submit",
        "media::resize",
        "--app",
        "cli_app:media",
        "--payload",
        payload,
        "--depends-on",
        "77",
    )
    assert result.code == 1, result
    assert result.err.count("submit media::resize") <= 1 and "77" in result.err, result
