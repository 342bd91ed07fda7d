"""The PostgreSQL store while its server is down (a private cluster, stopped and started again).

An operation retries while the server is unreachable, for up to `reconnect_timeout`; a caller
that is cancelled gets its cancellation back at once, `close()` ends the operations still
retrying, a shielded caller keeps retrying until the server returns. An outage is logged once
when it starts and once when it ends, not once per retry. Deadlock retries are counted and
logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import psycopg
import pytest

from wireframe.store import NewJob, PostgresStore, StoreError, Submitted
from wireframe.store.sql import control as control_sql
from wireframe.store.sql.tx import Tx

from pg_support import new_schema_name
from private_pg import PrivateCluster, private_cluster

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

UNREACHABLE = "lost PostgreSQL at"
ASYNCIO_ONLY = pytest.mark.parametrize("anyio_backend", ["asyncio"])
"""For a test of the store's threads, not of how its caller awaits them."""


@pytest.fixture(scope="module")
def pg() -> Iterator[PrivateCluster]:
    """A private cluster the tests stop and start."""
    with private_cluster() as cluster:
        yield cluster


@pytest.fixture
async def store(pg: PrivateCluster, anyio_backend: str) -> AsyncIterator[PostgresStore]:
    """An open store in a fresh schema; the server is running again afterwards."""
    store = PostgresStore(pg.dsn, schema=new_schema_name("wfo"), pool_size=2, reconnect_timeout=60)
    await store.open()
    try:
        yield store
    finally:
        if not pg.running():
            pg.start()
        await store.close()


def store_records(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [
        r.getMessage() for r in caplog.records if r.name == "wireframe.store" and r.levelno == level
    ]


async def retrying(caplog: pytest.LogCaptureFixture) -> None:
    """Wait until the store has logged that the server is unreachable."""
    with anyio.fail_after(10):
        while not any(UNREACHABLE in m for m in store_records(caplog, logging.WARNING)):
            await anyio.sleep(0.01)


async def test_a_cancelled_operation_returns_at_once_while_the_server_is_down(
    pg: PrivateCluster, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wireframe.store")
    pg.stop("immediate")
    returned: list[float] = []
    async with anyio.create_task_group() as tg:

        async def get() -> None:
            with anyio.CancelScope() as scope:
                cancels.append(scope)
                await store.get(1)
            returned.append(time.monotonic())

        cancels: list[anyio.CancelScope] = []
        tg.start_soon(get)
        await retrying(caplog)
        cancelled_at = time.monotonic()
        cancels[0].cancel()
    assert returned and returned[0] - cancelled_at < 1.0

    await anyio.to_thread.run_sync(pg.start)
    assert await store.get(1) is None
    [ok] = await store.submit([NewJob("d::t", "d", "{}")])
    assert isinstance(ok, Submitted) and (await store.get(ok.id)) is not None
    # One line when the outage began, one when it ended: not one per retry.
    warnings = store_records(caplog, logging.WARNING)
    assert len(warnings) == 1 and UNREACHABLE in warnings[0], warnings
    infos = store_records(caplog, logging.INFO)
    assert (
        len(infos) == 1 and "reconnected to PostgreSQL at" in infos[0] and " after " in infos[0]
    ), infos


async def test_close_ends_the_operations_still_retrying(
    pg: PrivateCluster, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    pg.stop("immediate")
    errors: list[BaseException] = []
    async with anyio.create_task_group() as tg:

        async def submit() -> None:
            try:
                await store.submit([NewJob("d::t", "d", "{}")])
            except StoreError as exc:
                errors.append(exc)

        tg.start_soon(submit)
        await retrying(caplog)
        closed_at = time.monotonic()
        await store.close()
    assert time.monotonic() - closed_at < 1.0
    assert len(errors) == 1 and "the store was closed" in str(errors[0])
    assert "submit" in str(errors[0])

    await anyio.to_thread.run_sync(pg.start)
    await store.open()  # a closed store opens again
    assert await store.get(1) is None


async def test_a_shielded_operation_keeps_retrying_until_the_server_returns(
    pg: PrivateCluster, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    pg.stop("immediate")
    results: list[Any] = []
    async with anyio.create_task_group() as tg:

        async def submit() -> None:
            with anyio.CancelScope() as outer:
                scopes.append(outer)
                with anyio.CancelScope(shield=True):
                    results.extend(await store.submit([NewJob("d::t", "d", "{}")]))

        scopes: list[anyio.CancelScope] = []
        tg.start_soon(submit)
        await retrying(caplog)
        scopes[0].cancel()
        await anyio.to_thread.run_sync(pg.start)
    [result] = results
    assert isinstance(result, Submitted)
    assert (await store.get(result.id)) is not None


@ASYNCIO_ONLY
async def test_reconnect_timeout_from_the_url_bounds_the_retries(pg: PrivateCluster) -> None:
    store = PostgresStore(f"{pg.dsn}?schema={new_schema_name('wfo')}&reconnect_timeout=0.5")
    assert store.reconnect_timeout == 0.5
    await store.open()
    try:
        pg.stop("immediate")
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"PostgreSQL unreachable for 0\.5 s"):
            await store.get(1)
        assert time.monotonic() - started < 5
    finally:
        pg.start()
        await store.close()


@ASYNCIO_ONLY
async def test_deadlock_retries_are_counted_and_logged(
    pg: PrivateCluster,
    store: PostgresStore,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    results = await store.submit([NewJob("d::t", "d", "{}") for _ in range(2)])
    a, b = (r.id for r in results if isinstance(r, Submitted))
    other = {a: b, b: a}
    meet = threading.Barrier(2, timeout=10)
    first: set[int] = set()

    def pause(tx: Tx, job_id: int) -> int:
        """Lock the job, then (the first time) the other one, which the other call holds."""
        tx.execute("SELECT id FROM jobs WHERE id = ? FOR UPDATE", (job_id,))
        if job_id not in first:
            first.add(job_id)
            meet.wait()
        tx.execute("SELECT id FROM jobs WHERE id = ? FOR UPDATE", (other[job_id],))
        return 0

    monkeypatch.setattr(control_sql, "pause", pause)
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.pause, a)
        tg.start_soon(store.pause, b)
    assert store.conflict_retries == {"40P01": 1}
    warnings = store_records(caplog, logging.WARNING)
    assert any("deadlock in pause" in m for m in warnings), warnings


@ASYNCIO_ONLY
async def test_store_sessions_carry_the_timeouts(pg: PrivateCluster) -> None:
    url = f"{pg.dsn}?idle_in_transaction_timeout=7&keepalive_timeout=30"
    async with PostgresStore(url, schema=new_schema_name("wfo")) as store:

        def settings(tx: Tx, now: float) -> list[str]:
            names = (
                "idle_in_transaction_session_timeout",
                "tcp_keepalives_idle",
                "tcp_user_timeout",
            )
            return [tx.execute(f"SHOW {name}").fetchone()[0] for name in names]

        assert await store._run(settings) == ["7s", "15", "30000"]
    with psycopg.connect(pg.dsn) as conn:
        assert conn.execute("SHOW idle_in_transaction_session_timeout").fetchone() == ("0",)


async def test_a_cancelled_open_returns_at_once_while_the_server_is_down(
    pg: PrivateCluster, anyio_backend: str
) -> None:
    store = PostgresStore(pg.dsn, schema=new_schema_name("wfo"), connect_timeout=1)
    pg.stop("immediate")
    try:
        started = time.monotonic()
        with anyio.move_on_after(0.2):
            await store.open()
        assert time.monotonic() - started < 1.0
        with pytest.raises(StoreError, match="not open"):
            await store.get(1)
    finally:
        pg.start()
    await store.open()
    try:
        assert await store.get(1) is None
    finally:
        await store.close()
