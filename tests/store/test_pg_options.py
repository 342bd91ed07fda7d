"""The PostgreSQL store's timeouts: keyword arguments, URL parameters, validation, the CLI option.

Nothing here connects: a store is checked as it is built, before it opens.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wireframe import Domain, Scheduler
from wireframe.cli import UsageError, build_parser, main
from wireframe.cli.running import build_worker
from wireframe.store import PostgresStore, StoreURLError
from wireframe.store.postgres import Timeouts, parse_url

pytest.importorskip("psycopg")

URL = "postgresql://app@db.invalid:5432/jobs"


def test_defaults() -> None:
    store = PostgresStore(URL)
    assert store.timeouts == Timeouts(
        reconnect_timeout=120.0, idle_in_transaction_timeout=60.0, keepalive_timeout=60.0
    )
    assert store.reconnect_timeout == 120.0
    assert store.conflict_retries == {}


def test_url_parameters_set_the_timeouts_and_stay_away_from_libpq() -> None:
    url = (
        f"{URL}?reconnect_timeout=30&idle_in_transaction_timeout=5&keepalive_timeout=0"
        "&schema=app&sslmode=disable"
    )
    store = PostgresStore(url)
    assert store.timeouts == Timeouts(30.0, 5.0, 0.0)
    conninfo, schema = parse_url(url, None)
    assert (conninfo, schema) == (f"{URL}?sslmode=disable", "app")


def test_a_keyword_argument_wins_over_the_url() -> None:
    store = PostgresStore(f"{URL}?reconnect_timeout=30", reconnect_timeout=2.5)
    assert store.reconnect_timeout == 2.5


@pytest.mark.parametrize("raw", ["abc", "-1", "nan", "inf", ""])
@pytest.mark.parametrize(
    "name", ["reconnect_timeout", "idle_in_transaction_timeout", "keepalive_timeout"]
)
def test_a_bad_url_value_is_an_error_naming_it(name: str, raw: str) -> None:
    with pytest.raises(StoreURLError, match=f"{name}={raw!r}") as info:
        PostgresStore(f"{URL}?{name}={raw}")
    assert "seconds >= 0" in str(info.value) and "db.invalid" in str(info.value)


@pytest.mark.parametrize("value", [-1, float("nan"), float("inf"), True, "5"])
def test_a_bad_keyword_value_is_an_error_naming_it(value: object) -> None:
    with pytest.raises(ValueError, match=f"PostgresStore reconnect_timeout .*{value!r}"):
        PostgresStore(URL, reconnect_timeout=value)  # type: ignore[arg-type]


def test_connect_timeout_comes_from_the_keyword_or_the_url() -> None:
    assert PostgresStore(URL).connect_timeout == 10.0
    assert PostgresStore(f"{URL}?connect_timeout=3").connect_timeout == 3.0
    assert PostgresStore(f"{URL}?connect_timeout=3", connect_timeout=1.5).connect_timeout == 1.5
    with pytest.raises(StoreURLError, match="connect_timeout='soon'") as info:
        PostgresStore("postgresql://app:s3cret@db.invalid/jobs?connect_timeout=soon")
    assert "s3cret" not in str(info.value)


def test_the_password_stays_out_of_errors() -> None:
    with pytest.raises(StoreURLError) as info:
        PostgresStore("postgresql://app:s3cret@db.invalid/jobs?reconnect_timeout=x")
    assert "s3cret" not in str(info.value)


@pytest.fixture
def app(tmp_path: Path) -> str:
    """A worker app in a file (one domain): `--app` accepts a path."""
    path = tmp_path / "app.py"
    path.write_text("from wireframe import Domain\n\nd = Domain('d')\n")
    return str(path)


def test_the_worker_command_checks_reconnect_timeout(
    app: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["worker", "--app", app, "--store", URL, "--reconnect-timeout"]
    assert main([*args, "soon"]) == 2
    assert "--reconnect-timeout: invalid duration 'soon'" in capsys.readouterr().err
    assert main([*args, "-5"]) == 2
    assert "--reconnect-timeout" in capsys.readouterr().err


def test_reconnect_timeout_needs_a_postgresql_store(
    app: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sqlite = f"sqlite:///{tmp_path}/jobs.db"
    args = ["worker", "--app", app, "--store", sqlite, "--reconnect-timeout", "30"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--reconnect-timeout applies to PostgreSQL stores only" in err and "jobs.db" in err


def test_the_worker_command_runs_on_the_apps_own_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --store, the app's store object itself: its URL hides the password."""
    monkeypatch.delenv("WIREFRAME_STORE", raising=False)
    store = PostgresStore("postgresql://app:s3cret@db.invalid/jobs", reconnect_timeout=30)
    app = Scheduler(store, domains=[Domain("d")])
    scheduler = build_worker(build_parser().parse_args(["worker", "--app", "x"]), app)
    assert scheduler.store is store
    same = ["worker", "--app", "x", "--reconnect-timeout", "30"]
    assert build_worker(build_parser().parse_args(same), app).store is store
    other = build_parser().parse_args(["worker", "--app", "x", "--reconnect-timeout", "5"])
    with pytest.raises(UsageError, match="--reconnect-timeout needs --store URL"):
        build_worker(other, app)
