"""Control, submit, migrate and purge through the command, checked through the store."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import anyio
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


async def _record_media_types(store_url: str) -> None:
    """What an app's process does when it opens its Scheduler: record its job types."""
    import cli_app

    from wireframe import Scheduler

    async with Scheduler(store_url, domains=[cli_app.media], worker=False):
        pass


def test_submit_checks_the_payload_against_the_recorded_type_and_applies_its_settings(
    cli: Cli, wf: Cli, store_url: str
) -> None:
    payload = '{"path": "a.jpg", "width": 300}'
    assert wf("migrate").code == 0  # submit creates no store
    assert_one_line_error(
        wf("submit", "media::resize", "--payload", payload),
        2,
        "no record of job type 'media::resize'",
        "start a worker",
        "--app",
    )
    anyio.run(_record_media_types, store_url)

    result = cli("submit", "media::resize", "--payload", payload)
    assert result.code == 0 and "submitted job 1 (media::resize" in result.out, result
    assert "derives a dedup key from its payload" in result.out  # and this job has none
    first = in_store(store_url, _get, 1)
    # The job type's settings: 3 attempts, priority high, its tags, resources and ttl.
    assert (first.domain, first.state, first.max_attempts, first.priority) == (
        "media",
        JobState.PENDING,
        3,
        20,
    )
    assert first.tags == ("images",) and first.resources == {"gpu": 1}
    assert first.expires_at is not None and 3500 < first.expires_at - first.created_at <= 3600

    cli = wf
    for bad, words in [
        ('{"path": "a.jpg", "width": "300"}', ("payload.width: expected int, got '300' (str)",)),
        ('{"path": "a.jpg", "width": true}', ("payload.width: expected int, got True (bool)",)),
        ('{"path": "a.jpg"}', ("payload.width: missing",)),
        ('{"path": "a.jpg", "width": 1, "height": 2}', ("payload.height: unexpected field",)),
        ("[1, 2]", ("JSON object", "list")),
        ("{bad", ("not valid JSON",)),
    ]:
        assert_one_line_error(cli("submit", "media::resize", "--payload", bad), 2, *words)
    assert_one_line_error(
        cli("submit", "media::crop"), 2, "unknown job type 'media::crop'", "media::after"
    )

    at = "2031-05-01T12:30:00+02:00"
    data = cli(
        "submit",
        "media::resize",
        "--payload",
        '{"path": "b.jpg", "width": 10, "sharpen": true}',
        "--priority",
        "low",
        "--run-at",
        at,
        "--ttl",
        "2h",
        "--key",
        "k1",
        "--tags",
        "eu,big",
        "--resources",
        "gpu=2,mem=4",
        "--max-attempts",
        "5",
        "--json",
    ).json()
    assert data == {
        "id": 2,
        "type": "media::resize",
        "duplicate": False,
        "replaced": False,
        "priority": 0,
        "max_attempts": 5,
    }
    job = in_store(store_url, _get, 2)
    when = dt.datetime.fromisoformat(at).timestamp()
    assert job.state is JobState.SCHEDULED and job.run_at == when and job.key == "k1"
    assert job.expires_at == when + 7200 and job.max_attempts == 5 and job.priority == 0
    assert set(job.tags) == {"big", "eu", "images"} and job.resources == {"gpu": 2, "mem": 4}
    again = cli("submit", "media::resize", "--payload", payload, "--key", "k1", "--json").json()
    assert again["id"] == 2 and again["duplicate"] is True

    for option, value, words in [
        ("--run-at", "tomorrow", ("--run-at", "'tomorrow'", "ISO 8601")),
        ("--ttl", "0", ("--ttl", "'0'")),
        ("--ttl", "soon", ("--ttl", "'soon'")),
        ("--resources", "gpu", ("--resources", "'gpu'", "name=amount")),
        ("--resources", "gpu=0", ("--resources", "'gpu'", "'0'")),
        ("--resources", "gpu=x", ("--resources", "'gpu'", "'x'")),
        ("--priority", "urgent", ("'urgent'",)),
        ("--delay", "soon", ("'soon'",)),
        ("--max-attempts", "0", ("--max-attempts", "'0'")),
        ("--key", "", ("--key",)),
    ]:
        result = cli("submit", "media::resize", "--payload", payload, option, value)
        assert_one_line_error(result, 2, *words)
    both = cli("submit", "media::resize", "--payload", payload, "--delay", "1m", "--run-at", at)
    assert_one_line_error(both, 2, "--delay", "--run-at")

    dep = cli("submit", "media::after", "--depends-on", "1", "--json").json()
    assert in_store(store_url, _state, dep["id"]) is JobState.BLOCKED
    assert_one_line_error(cli("submit", "resize"), 2, "'resize'", "domain::name")
    assert_one_line_error(cli("submit", "me dia::x"), 2, "'me dia'")
    assert_one_line_error(cli("submit", "media::after", "--depends-on", "77"), 1, "77")
    assert len(cli("jobs", "--json").json()) == 3


def test_submit_learns_the_types_from_the_app_and_types_lists_the_recorded_ones(
    wf: Cli, store_url: str
) -> None:
    cli = wf
    assert cli("types").code == 1  # no store yet: types creates none
    assert cli("migrate").code == 0
    assert cli("types").out.startswith("no job types recorded")
    assert cli("types", "--json").json() == []
    # --app: the type from the app's code; its key callable gives the dedup key.
    app = ("--app", "cli_app:media")
    data = cli("submit", "media::resize", *app, "--payload", '{"path": "a", "width": 3}', "--json")
    job = in_store(store_url, _get, data.json()["id"])
    assert job.key == "a:3" and job.max_attempts == 3
    assert_one_line_error(
        cli("submit", "media::resize", *app, "--payload", '{"path": 1, "width": 3}'),
        2,
        "payload.path: expected str, got 1 (int)",
    )
    assert_one_line_error(cli("submit", "demo::ok", *app), 2, "unknown job type 'demo::ok'")

    anyio.run(_record_media_types, store_url)
    listed = {t["type"]: t for t in cli("types", "--json").json()}
    assert sorted(listed) == ["media::after", "media::resize"]
    resize = listed["media::resize"]
    assert resize["settings"]["max_attempts"] == 3 and resize["settings"]["priority"] == 20
    assert resize["settings"]["retry"]["kind"] == "fixed" and resize["settings"]["key"] is True
    fields = resize["payload"]["fields"]
    assert [(f["name"], f["type"]["kind"], f["required"]) for f in fields] == [
        ("path", "str", True),
        ("width", "int", True),
        ("sharpen", "bool", False),
    ]
    text = cli("types").out
    assert "media::resize" in text and "payload: Resize\n" in text
    assert "    width: int\n" in text and "    sharpen: bool = false\n" in text
    assert "priority 20, attempts 3" in text and "resources gpu=1" in text


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
