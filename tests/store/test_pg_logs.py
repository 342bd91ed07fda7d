"""What the PostgreSQL store logs about its server, and what it keeps out of the user's logs.

An outage is one WARNING when it is noticed and one INFO when the server is back, however many
connections fail or come back late; the store's own connection pools log nothing above DEBUG
(the store says what matters itself), while a pool the application made still warns as usual;
a connection error is put in one short line, and a refusal (wrong password, unknown role or
database) is told from an outage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest

from wireframe.store import PostgresStore, StoreError
from wireframe.store._pg_calls import Outage, reason, refusal

from private_pg import spare_port

psycopg = pytest.importorskip("psycopg")
psycopg_pool = pytest.importorskip("psycopg_pool")

ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])
"""For tests of the store's threads and pools, not of how its caller awaits them."""

URL = "postgresql://app:***@db.example:5432/jobs?schema=app"


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == logger]


def test_an_outage_is_one_warning_and_one_info_whatever_the_stragglers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wireframe.store")
    outage = Outage(URL, 120.0)
    before = time.monotonic()
    outage.failed("Connection refused", before)
    outage.failed("server closed the connection unexpectedly", time.monotonic())  # another one
    outage.passed(before - 1.0)  # an attempt begun before the outage was noticed
    assert outage.since is not None
    outage.passed(time.monotonic())
    outage.failed("Connection refused", before)  # begun before the server was back
    outage.passed(time.monotonic())
    assert outage.since is None
    assert lines(caplog, "wireframe.store") == [
        (
            logging.WARNING,
            f"lost PostgreSQL at {URL} (Connection refused); retrying for up to 120 s",
        ),
        (logging.INFO, f"reconnected to PostgreSQL at {URL} after 0.0 s"),
    ]
    caplog.clear()
    outage.failed("Connection refused", time.monotonic())  # the next outage
    assert [level for level, _ in lines(caplog, "wireframe.store")] == [logging.WARNING]


def _error(text: str) -> Exception:
    return psycopg.OperationalError(text)


def test_connection_errors_in_one_short_line() -> None:
    down = _error(
        'connection failed: connection to server at "127.0.0.1", port 1 failed: Connection '
        "refused\n\tIs the server running on that host and accepting TCP/IP connections?"
    )
    assert reason(down) == "Connection refused"
    assert refusal(down) is None
    lost = _error(
        "consuming input failed: server closed the connection unexpectedly\n\tThis probably "
        "means the server terminated abnormally\n\tbefore or while processing the request."
    )
    assert reason(lost) == "consuming input failed: server closed the connection unexpectedly"
    assert refusal(lost) is None
    for said in (
        'password authentication failed for user "app"',
        'role "app" does not exist',
        'database "jobs" does not exist',
        'no pg_hba.conf entry for host "127.0.0.1", user "app", database "jobs", no encryption',
    ):
        error = _error(
            f'connection failed: connection to server at "127.0.0.1", port 5432 failed: '
            f"FATAL:  {said}"
        )
        assert reason(error) == refusal(error) == said
    assert reason(ValueError("bad\nvalue")) == "ValueError: bad value"


@pytest.fixture
def closed_port_store() -> Iterator[PostgresStore]:
    """A store whose server is a loopback port nobody listens on."""
    yield PostgresStore(
        f"postgresql://postgres@127.0.0.1:{spare_port()}/x", schema="wf_quiet", connect_timeout=0.3
    )


def _app_pool(caplog: pytest.LogCaptureFixture) -> None:
    """A pool of the application's own on a dead port: it must still warn, as psycopg does."""
    pool = psycopg_pool.ConnectionPool(
        f"postgresql://postgres@127.0.0.1:{spare_port()}/x", name="app-pool", open=False
    )
    pool.open(wait=False)
    try:
        deadline = time.monotonic() + 10
        while not any("'app-pool'" in m for _, m in lines(caplog, "psycopg.pool")):
            assert time.monotonic() < deadline, "the application's pool never warned"
            time.sleep(0.01)
    finally:
        pool.close()


@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_the_store_pools_warnings_stay_out_of_the_logs(
    closed_port_store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    with pytest.raises(StoreError, match=r"within 0\.3 s: Connection refused"):
        await closed_port_store.open()
    _app_pool(caplog)
    pool_lines = lines(caplog, "psycopg.pool")
    assert not [m for _, m in pool_lines if "wireframe-wf_quiet" in m], pool_lines
    assert (logging.WARNING, "error connecting in 'app-pool'") in [
        (level, m.split(":")[0]) for level, m in pool_lines
    ], pool_lines


@pytest.mark.anyio
@ASYNCIO_ONLY
async def test_at_debug_the_store_pools_records_show_as_debug(
    closed_port_store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="psycopg.pool")
    with pytest.raises(StoreError):
        await closed_port_store.open()
    ours = [(lv, m) for lv, m in lines(caplog, "psycopg.pool") if "wireframe-wf_quiet" in m]
    assert any(m.startswith("error connecting in 'wireframe-wf_quiet'") for _, m in ours), ours
    assert {level for level, _ in ours} == {logging.DEBUG}
