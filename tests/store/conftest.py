"""The store conformance suite's fixtures: one `store` fixture, parametrised over every store.

Add a store to the suite by adding one entry to STORE_FACTORIES (a `pytest.param` may carry
marks, e.g. `pytest.mark.postgres` for a store that needs a server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from wireframe.store import MemoryStore, PostgresStore, SqliteMemoryStore, SqliteStore, Store

from pg_support import drop_schema, new_schema_name, require_pg
from store_support import FakeClock  # also imported by tests from here, as before

S = TypeVar("S", bound=Store)

StoreFactory = Callable[[Path, FakeClock], AbstractAsyncContextManager[Store]]


@asynccontextmanager
async def opened(store: S) -> AsyncIterator[S]:
    """`store`, open for the block and closed after it."""
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def memory_store(tmp_path: Path, clock: FakeClock) -> AbstractAsyncContextManager[MemoryStore]:
    """A fresh memory store."""
    return opened(MemoryStore(clock=clock))


def sqlite_memory_store(
    tmp_path: Path, clock: FakeClock
) -> AbstractAsyncContextManager[SqliteMemoryStore]:
    """A fresh SQL engine on a private in-memory SQLite database."""
    return opened(SqliteMemoryStore(clock=clock))


def sqlite_store(tmp_path: Path, clock: FakeClock) -> AbstractAsyncContextManager[SqliteStore]:
    """A fresh SQLite store in the test's temporary directory."""
    return opened(SqliteStore(tmp_path / "jobs.db", clock=clock))


@asynccontextmanager
async def postgres_store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Store]:
    """A PostgreSQL store in a fresh schema of its own, dropped afterwards."""
    dsn = require_pg()
    name = new_schema_name()
    store = PostgresStore(dsn, schema=name, clock=clock, pool_size=2)
    try:
        await store.open()
        try:
            yield store
        finally:
            await store.close()
    finally:
        drop_schema(name)


STORE_FACTORIES: list[object] = [
    pytest.param(memory_store, id="memory"),
    pytest.param(sqlite_memory_store, id="sqlite-memory"),
    pytest.param(sqlite_store, id="sqlite"),
    pytest.param(postgres_store, id="postgres", marks=pytest.mark.postgres),
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the conformance suite on PostgreSQL under asyncio only.

    The PostgreSQL store runs each operation in a worker thread through anyio, the same code on
    either event loop, and the README lets it be asyncio-only; running its whole conformance
    suite twice cost half a minute of the suite's five. `tests/postgres/test_trio.py` keeps the
    store working end to end on trio.
    """
    for item in list(items):
        params = getattr(getattr(item, "callspec", None), "params", {})
        if params.get("store") is postgres_store and params.get("anyio_backend") == "trio":
            items.remove(item)


@pytest.fixture
def clock() -> FakeClock:
    """The fake clock injected into the store under test."""
    return FakeClock()


@pytest.fixture(params=STORE_FACTORIES)
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock, anyio_backend: str
) -> AsyncIterator[Store]:
    """An open, empty store of each kind, driven by the fake clock."""
    factory: StoreFactory = request.param
    async with factory(tmp_path, clock) as opened:
        yield opened
