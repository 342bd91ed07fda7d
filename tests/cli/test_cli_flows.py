"""Pausing a domain or job type from the command line, and what `jobs`, `job` and `top` show."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import Cli, Result, Worker, assert_one_line_error, in_store, wait_until

from wireframe.store import JobState, NewJob, Store


async def _submit(store: Store, *jobs: tuple[str, int]) -> list[int]:
    """Submit jobs given as (type, priority), in one transaction; their ids."""
    results = await store.submit(
        [NewJob(type=t, domain=t.split("::")[0], payload="{}", priority=p) for t, p in jobs]
    )
    return [r.id for r in results]


async def _state(store: Store, job_id: int) -> JobState | None:
    job = await store.get(job_id)
    return None if job is None else job.state


def test_pause_and_resume_a_domain(cli: Cli, wf: Cli, store_url: str) -> None:
    assert cli("migrate").code == 0
    [held, free] = in_store(store_url, _submit, ("media::resize", 10), ("mail::send", 10))

    result = cli("pause-domain", "media")
    assert result.code == 0 and "domain media: paused" in result.out, result
    assert "already paused" in wf("pause-domain", "media").out
    [flow] = cli("paused", "--json").json()
    assert (flow["kind"], flow["name"]) == ("domain", "media")
    assert "media" in wf("paused").out

    listing = cli("jobs")
    assert listing.code == 0 and "domain media is paused" in listing.out, listing
    by_id = {j["id"]: j for j in wf("jobs", "--json").json()}
    assert by_id[held]["waits"] == "domain media is paused"
    assert "waits" not in by_id[free]
    detail = cli("job", str(held))
    assert "waits: domain media is paused" in detail.out, detail
    assert wf("job", str(held), "--json").json()["workers"]["why_not"] == ("domain media is paused")
    top = cli("top", "--once")
    assert "paused: domain media" in top.out and "media (paused)" in top.out, top
    assert wf("top", "--once", "--json").json()["paused"][0]["name"] == "media"

    result = cli("resume-domain", "media")
    assert result.code == 0 and "domain media: resumed" in result.out, result
    assert "was not paused" in wf("resume-domain", "media").out
    assert cli("paused", "--json").json() == []
    assert "nothing is paused" in wf("paused").out
    assert "waits" not in {j["id"]: j for j in wf("jobs", "--json").json()}[held]


def test_pause_and_resume_job_types(wf: Cli) -> None:
    assert wf("migrate").code == 0
    result = wf("pause-type", "media::crop", "mail::send", "--json")
    assert result.code == 0, result
    assert [(r["name"], r["changed"]) for r in result.json()] == [
        ("media::crop", True),
        ("mail::send", True),
    ]
    assert [f["name"] for f in wf("paused", "--json").json()] == ["mail::send", "media::crop"]
    assert "job type media::crop: resumed" in wf("resume-type", "media::crop").out
    assert [f["name"] for f in wf("paused", "--json").json()] == ["mail::send"]


def test_pause_usage_errors(wf: Cli) -> None:
    assert_one_line_error(
        wf("pause-type", "media"), 2, "pause-type: job type 'media' must be written domain::name"
    )
    assert_one_line_error(
        wf("pause-domain", "media::crop"), 2, "'media::crop' is a job type, not a domain"
    )
    assert_one_line_error(wf("resume-domain"), 2, "DOMAIN")


@pytest.mark.slow
def test_a_worker_in_another_process_honours_a_pause(
    cli: Cli, store_url: str, tmp_path: Path
) -> None:
    assert cli("migrate").code == 0
    worker = Worker(store_url, "--app", "flow_app:scheduler")
    try:
        release = tmp_path / "release"

        async def submit_slow(store: Store) -> int:
            [result] = await store.submit(
                [NewJob("media::resize", "media", f'{{"release": "{release}"}}')]
            )
            return result.id

        slow = in_store(store_url, submit_slow)
        wait_until(
            lambda: in_store(store_url, _state, slow) is JobState.RUNNING, "the slow job to run"
        )
        assert cli("pause-domain", "media").code == 0
        assert cli("pause-type", "mail::send").code == 0
        # Submitted together: a claim that could take the held jobs takes them first.
        held_media, held_type, witness = in_store(
            store_url, _submit, ("media::crop", 30), ("mail::send", 30), ("mail::note", 10)
        )
        release.touch()  # the running job of the paused domain finishes
        wait_until(
            lambda: in_store(store_url, _state, slow) is JobState.COMPLETED,
            "the running job to finish",
        )
        wait_until(
            lambda: in_store(store_url, _state, witness) is not JobState.PENDING,
            "the worker to claim the witness",
        )
        assert in_store(store_url, _state, held_media) is JobState.PENDING
        assert in_store(store_url, _state, held_type) is JobState.PENDING
        assert cli("resume-domain", "media").code == 0
        assert cli("resume-type", "mail::send").code == 0
        for job_id in (held_media, held_type):
            wait_until(
                lambda job_id=job_id: in_store(store_url, _state, job_id) is JobState.COMPLETED,
                f"job {job_id} to run once resumed",
            )
    finally:
        worker.kill()


def test_submit_debounce_and_throttle(wf: Cli) -> None:
    assert wf("migrate").code == 0
    app = ("--app", "flow_app:scheduler")

    def submit(*args: str) -> Result:
        return wf("submit", "media::crop", *app, *args)

    first = submit("--payload", '{"v": 1}', "--key", "k", "--debounce", "1h", "--json")
    assert first.code == 0, first
    assert (first.json()["duplicate"], first.json()["replaced"]) == (False, False)
    second = submit("--payload", '{"v": 2}', "--key", "k", "--debounce", "1h")
    assert second.code == 0 and f"debounced: job {first.json()['id']}" in second.out, second
    [job] = wf("jobs", "--json").json()
    assert (job["payload"], job["state"]) == ({"v": 2}, "scheduled")

    throttled = submit("--key", "t", "--throttle", "1h", "--json")
    assert throttled.code == 0 and throttled.json()["duplicate"] is False, throttled
    assert wf("cancel", str(throttled.json()["id"])).code == 0
    again = submit("--key", "t", "--throttle", "1h", "--json")
    assert again.json()["duplicate"] is True and again.json()["id"] == throttled.json()["id"]

    assert_one_line_error(submit("--debounce", "5s"), 2, "--debounce needs a dedup key")
    assert_one_line_error(
        submit("--key", "k", "--debounce", "5s", "--throttle", "5s"), 2, "not both"
    )
    assert_one_line_error(
        submit("--key", "k", "--debounce", "5s", "--delay", "1s"), 2, "without --delay"
    )
    assert_one_line_error(submit("--key", "k", "--throttle", "0s"), 2, "--throttle", "'0s'")
