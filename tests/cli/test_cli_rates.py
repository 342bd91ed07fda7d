"""What the CLI shows of rate limits: why a job waits (`jobs`, `job`), and each limit's tokens,
empty keys and held jobs (`top`, `top --json`). In-process, SQLite."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import attrs
import pytest
from cli_support import Cli, in_process_cli, in_store

from wireframe import Domain, JobContext, Rate, Scheduler
from wireframe.store import ClaimRequest, NewJob, Store
from wireframe.store.rates import RateLimit

MEDIA = RateLimit("media", "domain", 100, 1.0, 2)
API = RateLimit("api::call", "type", 5, 60.0, 1, keyed=True)


@pytest.fixture
def url(tmp_path: Path) -> str:
    """Jobs a worker's claim held back: media (100/s, burst 2) and api::call (5/min per key)."""

    async def seed(store: Store) -> None:
        await store.submit([NewJob("media::resize", "media", "{}") for _ in range(5)])
        await store.submit([NewJob("api::call", "api", "{}", rate_key="t1") for _ in range(2)])
        request = ClaimRequest("w1", 10, 60.0, ("media", "api"), rates=(MEDIA, API))
        assert len(await store.claim(request)) == 3

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    in_store(url, seed)
    return url


@pytest.fixture
def run(url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    return in_process_cli(url, capsys, monkeypatch, columns=160)


def test_jobs_and_job_say_which_limit_holds_a_job(run: Cli) -> None:
    listed = run("jobs", "--state", "pending")
    assert listed.code == 0, listed
    assert "rate limited by media: 100/s, next token in" in listed.out
    assert "rate limited by api::call (key 't1'): 5/min, next token in" in listed.out
    shown = run("job", "3")
    assert "rate limited by media: 100/s, next token in 10 ms" in shown.out, shown


def test_top_shows_each_limit_once(run: Cli) -> None:
    result = run("top", "--json", "--iterations", "1", "--interval", "0.01s")
    assert result.code == 0, result
    [frame] = [json.loads(line) for line in result.out.splitlines()]
    limits = {item["limit"]: item for item in frame["rate_limits"]}
    assert set(limits) == {"media", "api::call"}
    assert limits["media"]["held_jobs"] == 3
    assert limits["media"]["burst"] == 2 and limits["media"]["count"] == 100
    assert limits["api::call"]["keyed"] is True
    assert limits["api::call"]["empty_keys"] == 1
    assert limits["api::call"]["held_jobs"] == 1
    screen = run("top", "--once")
    assert screen.code == 0, screen
    assert "rate limits" in screen.out
    assert "5/min per key" in screen.out


@attrs.frozen
class Hit:
    tenant: str
    weight: int = 1


tenants = Domain("api", rate=Rate(5, per=60.0), rate_key=lambda hit: hit.tenant)


@tenants.job(cost=lambda hit: hit.weight)
async def call(job: Hit, ctx: JobContext) -> None: ...


def test_submit_derives_the_rate_key_and_cost_with_the_app_only(run: Cli, url: str) -> None:
    async def record(store: Store) -> None:
        async with Scheduler(store, domains=[tenants], worker=False):
            pass

    in_store(url, record)
    types = run("types")
    assert "rate api 5 per 60 s per key" in types.out, types
    payload = '{"tenant": "t7", "weight": 2}'
    refused = run("submit", "api::call", "--payload", payload)
    assert refused.code == 2, refused
    assert "derives its rate key from the payload in the app's code: pass --app" in refused.err
    done = run("submit", "api::call", "--payload", payload, "--app", "test_cli_rates:tenants")
    assert done.code == 0, done
    db = url.removeprefix("sqlite:///")
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT rate_key, cost FROM jobs WHERE type = 'api::call' "
                            "AND payload LIKE '%t7%'").fetchall()  # fmt: skip
    assert rows == [("t7", 2)]
