"""PostgreSQL: a finish takes its row locks in ascending id (`wireframe.store.sql.locks`).

Another transaction holds one row of a job tree and then asks for a second one, the way a
heartbeat or another worker's finish would. A finish that locked out of order would hold that
second row while waiting for the first: a deadlock, seen here as the other transaction's
`lock_timeout` (shorter than the server's `deadlock_timeout`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest

from wireframe.store import Complete, Fail, JobState, PostgresStore, Store

from pg_support import drop_schema, new_schema_name, require_pg
from store_support import claim_one, job, state, submit

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


@pytest.fixture
async def pg(anyio_backend: str) -> AsyncIterator[tuple[PostgresStore, str]]:
    """A PostgreSQL store in a schema of its own, and that schema's name."""
    dsn = require_pg()
    schema = new_schema_name()
    store = PostgresStore(dsn, schema=schema, pool_size=2)
    await store.open()
    try:
        yield store, schema
    finally:
        await store.close()
        drop_schema(schema)


class Holder:
    """Another transaction, on a connection of its own, that locks job rows one at a time."""

    def __init__(self, schema: str) -> None:
        import psycopg

        self.conn = psycopg.connect(require_pg())
        self.conn.execute(f"SET search_path TO {schema}")
        self.conn.execute("SET lock_timeout = '500ms'")  # below deadlock_timeout (1 s)
        self.pid = self.conn.info.backend_pid

    def lock(self, job_id: int) -> None:
        """Lock one job row in this transaction (fails after 500 ms of waiting)."""
        self.conn.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", (job_id,))

    def blocking(self) -> int:
        """How many other server processes wait for a lock this transaction holds."""
        import psycopg

        with psycopg.connect(require_pg(), autocommit=True) as probe:
            row = probe.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                (self.pid,),
            ).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        """Commit and disconnect."""
        self.conn.commit()
        self.conn.close()


async def while_holding(
    schema: str, first: int, then: int, operation: Callable[[], Awaitable[Any]]
) -> Any:
    """Run `operation` while another transaction holds row `first`; once the operation waits
    for it, that transaction asks for row `then` too, then commits. The operation's result."""
    holder = Holder(schema)
    try:
        holder.lock(first)
        result: list[Any] = []
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                result.append(await operation())

            tg.start_soon(run)
            with anyio.fail_after(10):
                while not await anyio.to_thread.run_sync(holder.blocking):
                    await anyio.sleep(0.01)
            await anyio.to_thread.run_sync(holder.lock, then)
            holder.conn.commit()
        return result[0]
    finally:
        holder.close()


async def parent_and_child(store: Store) -> tuple[Any, Any]:
    """A running parent and its running child."""
    parent_id = await submit(store, type="p::t")
    parent = await claim_one(store, parent_id, domains=("p",))
    [kid] = await store.submit([job("c::t", parent_id=parent_id)])
    child = await claim_one(store, kid.id, domains=("c",))
    return parent, child


@pytest.mark.parametrize("ending", ["complete", "fail"])
async def test_a_child_that_ends_locks_its_parent_before_itself(
    pg: tuple[PostgresStore, str], ending: str
) -> None:
    store, schema = pg
    parent, child = await parent_and_child(store)
    outcome = Complete(child.lease, '"r"') if ending == "complete" else Fail(child.lease, "boom")
    [applied] = await while_holding(schema, parent.id, child.id, lambda: store.finish([outcome]))
    assert applied
    record = await store.get(parent.id)
    assert record is not None and record.active_children == 0


async def test_a_fail_fast_failure_takes_a_busy_sibling_in_order(
    pg: tuple[PostgresStore, str],
) -> None:
    store, schema = pg
    parent_id = await submit(store, type="p::t")
    await claim_one(store, parent_id, domains=("p",))
    sibling = await submit(store, type="s::t", parent_id=parent_id)
    failing = await submit(store, type="c::t", parent_id=parent_id)
    kid = await claim_one(store, failing, domains=("c",))
    # The failure cancels its sibling, whose row lies below its own, while another
    # transaction holds the sibling: the finish starts over and locks it in order.
    [applied] = await while_holding(
        schema, sibling, failing, lambda: store.finish([Fail(kid.lease, "broke")])
    )
    assert applied
    assert await state(store, sibling) is JobState.CANCELLED
    assert await state(store, failing) is JobState.FAILED
