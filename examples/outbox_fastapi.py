"""A transactional outbox with FastAPI and psycopg: an order row and its "send confirmation" job
commit in one transaction, or neither does.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/test python examples/outbox_fastapi.py

`POST /orders` inserts the order and submits the job on the same connection
(`scheduler.submit(..., connection=conn)`): the job exists exactly when the order does, and the
workers are woken by the commit (a NOTIFY sent inside the transaction). An order refused after
the submit (out of stock) rolls back, and no confirmation is ever sent for it. The handler
records the confirmation in `ctx.transaction()`, which commits with the job's completion: a
crash or a lost lease cannot record it twice.

Run as a script, it serves the app in-process (httpx, no network), places two orders, prints
what happened and drops its schemas. With uvicorn: `uvicorn outbox_fastapi:app` (the schemas
are kept). SQLAlchemy users pass the connection they hold: `connection=session.connection()`
(sync) or `connection=await session.connection()` (async); the scheduler writes through the
psycopg connection underneath.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs

from wireframe import Domain, JobContext, Scheduler
from wireframe.testing import running

try:
    import httpx
    import psycopg
    from fastapi import FastAPI, HTTPException
    from psycopg_pool import AsyncConnectionPool
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    print(f"this example needs fastapi, httpx and psycopg ({exc.name} is missing)")
    raise SystemExit(0) from None

DSN = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
# Run as a script, the demo's schemas are its own (dropped at the end).
SUFFIX = f"_{os.getpid()}" if __name__ == "__main__" else ""
APP_SCHEMA, JOBS_SCHEMA = f"outbox_app{SUFFIX}", f"outbox_jobs{SUFFIX}"

mail = Domain("mail")


@attrs.frozen
class Confirmation:
    order_id: int
    email: str


@mail.job
async def send_confirmation(job: Confirmation, ctx: JobContext) -> str:
    # A real handler would call the mail service here (at least once), keyed by the order.
    async with ctx.transaction() as conn:  # a psycopg AsyncConnection in a transaction
        await conn.execute(
            f"INSERT INTO {APP_SCHEMA}.confirmations (order_id, email) VALUES (%s, %s)",
            (job.order_id, job.email),
        )
    return f"confirmation for order {job.order_id} sent to {job.email}"


scheduler = Scheduler(f"{DSN}?schema={JOBS_SCHEMA}", domains=[mail], poll_interval=30.0)
pool = AsyncConnectionPool(DSN, open=False)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await pool.open()
    async with pool.connection() as conn:
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {APP_SCHEMA}")
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {APP_SCHEMA}.orders "
            "(id BIGSERIAL PRIMARY KEY, item TEXT, quantity INT, email TEXT)"
        )
        await conn.execute(
            f"CREATE TABLE IF NOT EXISTS {APP_SCHEMA}.confirmations "
            "(order_id BIGINT PRIMARY KEY, email TEXT)"
        )
    await scheduler.open()  # before the first transaction: opening takes locks of its own
    async with running(scheduler):  # in a Service, add the scheduler as a task instead
        yield
    await pool.close()


app = FastAPI(lifespan=lifespan)
STOCK = 10


@app.post("/orders")
async def place_order(order: dict[str, Any]) -> dict[str, int]:
    async with pool.connection() as conn:  # commits at the end of the block, or rolls back
        cur = await conn.execute(
            f"INSERT INTO {APP_SCHEMA}.orders (item, quantity, email) VALUES (%s, %s, %s) "
            "RETURNING id",
            (order["item"], order["quantity"], order["email"]),
        )
        row = await cur.fetchone()
        assert row is not None
        job = await scheduler.submit(Confirmation(row[0], order["email"]), connection=conn)
        if order["quantity"] > STOCK:  # refused after the submit: the job goes with the order
            raise HTTPException(409, f"only {STOCK} {order['item']} in stock")
    return {"order": row[0], "job": job.id}


async def demo() -> None:
    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            ok = await client.post(
                "/orders", json={"item": "lamp", "quantity": 2, "email": "ada@example.com"}
            )
            refused = await client.post(
                "/orders", json={"item": "desk", "quantity": 50, "email": "bob@example.com"}
            )
        print(f"order placed: {ok.status_code} {ok.json()}")
        print(f"order refused: {refused.status_code} {refused.json()['detail']}")
        print("job result:", await scheduler.result(ok.json()["job"], timeout=30))
        jobs = await scheduler.jobs()
        async with pool.connection() as conn:
            cur = await conn.execute(f"SELECT count(*) FROM {APP_SCHEMA}.orders")
            orders = (await cur.fetchone() or (0,))[0]
            cur = await conn.execute(f"SELECT order_id, email FROM {APP_SCHEMA}.confirmations")
            confirmations = await cur.fetchall()
    print(f"orders: {orders}, jobs: {len(jobs)}, confirmations: {confirmations}")


def main() -> int:
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.Error as exc:
        print(f"this example needs PostgreSQL at DATABASE_URL ({DSN}): {exc}".strip())
        return 0
    try:
        asyncio.run(demo())
    finally:
        with psycopg.connect(DSN, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {APP_SCHEMA} CASCADE")
            conn.execute(f"DROP SCHEMA IF EXISTS {JOBS_SCHEMA} CASCADE")
    return 0


if __name__ == "__main__":
    sys.exit(main())
