"""`wireframe jobs` and `wireframe job ID` against a store the app ran on."""

from __future__ import annotations

from cli_support import Cli, assert_one_line_error


def test_jobs_table_and_json(cli: Cli, seeded: dict[str, int]) -> None:
    result = cli("jobs")
    assert result.code == 0, result
    for word in ("demo::ok", "demo::boom", "demo::parent", "other::thing", "completed", "failed"):
        assert word in result.out
    assert "ValueError: boom: bad input" in result.out

    rows = cli("jobs", "--json").json()
    by_id = {row["id"]: row for row in rows}
    assert set(by_id) == set(seeded.values())
    assert [row["id"] for row in rows] == sorted(by_id, reverse=True)  # newest first
    assert by_id[seeded["ok"]]["state"] == "completed"
    assert by_id[seeded["ok"]]["result"] == {"echo": {"n": 1}}
    assert by_id[seeded["boom"]]["payload"] == {"why": "bad input"}


def test_jobs_filters(wf: Cli, seeded: dict[str, int]) -> None:
    cli = wf
    failed = cli("jobs", "--state", "failed", "--json").json()
    assert [row["id"] for row in failed] == [seeded["boom"]]
    both = cli("jobs", "--state", "pending,blocked", "--json").json()
    assert {row["id"] for row in both} == {seeded["pending"], seeded["blocked"]}
    other = cli("jobs", "--domain", "other", "--json", "--oldest-first").json()
    assert [row["id"] for row in other] == [seeded["pending"], seeded["blocked"]]
    typed = cli("jobs", "--type", "demo::ok", "--json").json()
    assert {row["id"] for row in typed} == {seeded["ok"], seeded["child"]}
    assert len(cli("jobs", "--limit", "2", "--json").json()) == 2
    assert "no jobs match" in cli("jobs", "--domain", "nobody").out


def test_jobs_errors(cli: Cli, wf: Cli, seeded: dict[str, int]) -> None:
    assert_one_line_error(cli("jobs", "--store", "ftp://x"), 2, "'ftp://x'", "unknown scheme")
    cli = wf
    assert_one_line_error(cli("jobs", "--state", "sleeping"), 2, "'sleeping'", "pending")
    assert_one_line_error(cli("jobs", "--limit", "0"), 2, "--limit", "'0'")
    assert_one_line_error(cli("jobs", "--type", "nodomain"), 2, "'nodomain'", "domain::name")
    assert_one_line_error(cli("jobs", "--store", "ftp://x"), 2, "'ftp://x'", "unknown scheme")
    assert_one_line_error(cli("jobs", store=None), 2, "--store", "WIREFRAME_STORE")
    assert_one_line_error(cli("jobs", "--bogus"), 2, "--bogus")


def test_job_detail_shows_error_attempts_children_checkpoints_dependencies(
    cli: Cli, seeded: dict[str, int]
) -> None:
    boom = cli("job", str(seeded["boom"]))
    assert boom.code == 0, boom
    for text in ("demo::boom", "failed", "ValueError: boom: bad input", "Traceback", "attempts"):
        assert text in boom.out

    data = cli("job", str(seeded["boom"]), "--json").json()
    assert data["id"] == seeded["boom"] and data["state"] == "failed"
    assert data["error"]["error"] == "ValueError: boom: bad input"
    assert "raise ValueError" in data["error"]["traceback"]
    assert [a["outcome"] for a in data["attempts"]] == ["failed"]

    parent = cli("job", str(seeded["parent"]), "--json").json()
    assert parent["result"] == 42
    assert [c["id"] for c in parent["children"]] == [seeded["child"]]
    names = [c["name"] for c in parent["checkpoints"]]
    assert any(name.startswith("double") for name in names), names
    assert any(c["kind"] == "spawn" for c in parent["checkpoints"])
    text = cli("job", str(seeded["parent"])).out
    assert "children" in text and "checkpoints" in text and "double" in text

    blocked = cli("job", str(seeded["blocked"]), "--json").json()
    assert blocked["dependencies"] == [
        {"id": seeded["pending"], "type": "other::thing", "state": "pending", "outstanding": True}
    ]
    assert "1 of 1 outstanding" in cli("job", str(seeded["blocked"])).out


def test_job_errors(cli: Cli, wf: Cli, seeded: dict[str, int]) -> None:
    assert_one_line_error(cli("job", "999"), 1, "no job with id 999")
    cli = wf
    assert_one_line_error(cli("job", "abc"), 2, "'abc'")
    assert_one_line_error(cli("job", "-3"), 2)
    assert_one_line_error(cli("job"), 2, "id")
