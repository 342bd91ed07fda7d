"""`wireframe jobs`, `job` and `top` say why a pending job waits: its key is at its cap."""

from __future__ import annotations

from typing import Any

import keys_app
import pytest
from cli_support import Cli, in_store

from wireframe import Scheduler
from wireframe.store import ClaimRequest, Store


def three_of_one_account(url: str) -> list[int]:
    """Three jobs of account acct-7 (cap 2): two of them running, one held by the cap."""

    async def go(store: Store) -> list[int]:
        async with Scheduler(store, domains=[keys_app.accounts], worker=False) as s:
            ids = [r.id for r in await s.submit_many([{"acct": "acct-7"}] * 3, type=keys_app.work)]
            claimed = await store.claim(ClaimRequest("w", 10, 60.0, ("keys",)))
        assert len(claimed) == keys_app.CAP
        return ids

    return list(in_store(url, go))


@pytest.fixture
def held(store_url: str) -> int:
    return three_of_one_account(store_url)[-1]


def test_jobs_and_job_say_the_key_is_at_its_cap(wf: Cli, held: int) -> None:
    reason = "key acct-7 at its cap of 2 running"
    listed: list[dict[str, Any]] = wf("jobs", "--state", "pending", "--json").json()
    assert [(j["id"], j["reason"]) for j in listed] == [(held, reason)]
    assert reason in wf("jobs", "--state", "pending").out
    assert wf("job", str(held), "--json").json()["reason"] == reason
    assert reason in wf("job", str(held)).out


def test_top_counts_the_jobs_held_by_key_caps(wf: Cli, held: int) -> None:
    frame = wf("top", "--json", "--iterations", "1", "--interval", "0.01s").json()
    assert frame["key_caps"] == [
        {
            "domain": "keys",
            "type": "keys::work",
            "waiting_on_cap": 1,
            "max_running_per_key": 2,
        }
    ]
    screen = wf("top", "--once").out
    assert "waiting on key caps: keys::work 1 (busiest key runs 2)" in screen


def test_types_and_submit_tell_about_the_concurrency_key(wf: Cli, store_url: str) -> None:
    async def record(store: Store) -> None:
        async with Scheduler(store, domains=[keys_app.accounts], worker=False):
            pass  # opening records the job types

    in_store(store_url, record)
    assert "concurrency key from payload (max 2 per key)" in wf("types").out
    result = wf("submit", "keys::work", "--payload", '{"acct": "x"}')
    assert result.code == 0, result
    assert "takes its concurrency key from its payload" in result.out
    assert "no max_per_key holds it" in result.out
