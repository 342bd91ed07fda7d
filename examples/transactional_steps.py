"""A durable job whose steps write to the application's database exactly once (SQLite).

    python examples/transactional_steps.py

Each `ctx.transaction(step=...)` block writes the application's rows and records the step in
one transaction on the store's database, fenced on the job's lease. The job sleeps between its
steps, so it runs twice from the top: on the second run, the first block runs again in a
transaction that is rolled back (its unique key would even refuse the row: the error is
ignored), so every row is written once. A crash or a lost lease anywhere has the same effect: a
block's writes exist exactly when its step was recorded.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import attrs

from wireframe import Domain, JobContext, OneshotTask, Scheduler, Service, StopReceiver

billing = Domain("billing")
runs: list[int] = []


@attrs.frozen
class Invoice:
    id: int
    amount: int


@billing.job
async def invoice(job: Invoice, ctx: JobContext) -> str:
    runs.append(job.id)
    async with ctx.transaction(step="charge") as conn:  # a sqlite3 connection: sync calls
        conn.execute("INSERT INTO ledger (invoice, entry) VALUES (?, 'charged')", (job.id,))
        conn.execute("UPDATE accounts SET balance = balance - ? WHERE id = 1", (job.amount,))
    await ctx.sleep("cool-off", 0.2)  # suspends: the job leaves its slot, then runs again
    async with ctx.transaction(step="receipt") as conn:
        conn.execute("INSERT INTO ledger (invoice, entry) VALUES (?, 'receipt')", (job.id,))
    return "invoiced"


def create_tables(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE ledger (invoice INTEGER, entry TEXT, UNIQUE (invoice, entry))")
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, balance INTEGER)")
        conn.execute("INSERT INTO accounts VALUES (1, 100)")


def main(path: Path) -> int:
    create_tables(path)  # the store's file holds the application's tables too
    scheduler = Scheduler(path, domains=[billing], poll_interval=0.05)
    service = Service(name="transactional-steps")
    service.add_task(scheduler)

    class Demo(OneshotTask):
        id = "demo"

        async def run(self, stop: StopReceiver) -> None:
            job = await scheduler.submit(Invoice(7, 30))
            print("result:", await scheduler.result(job, timeout=30))
            service.stop("demo finished")

    service.add_task(Demo())
    code = service.run_sync()
    with sqlite3.connect(path) as conn:
        ledger = conn.execute("SELECT invoice, entry FROM ledger ORDER BY rowid").fetchall()
        balance = conn.execute("SELECT balance FROM accounts WHERE id = 1").fetchone()[0]
    print(f"handler runs: {len(runs)}")
    print(f"ledger: {ledger}")
    print(f"balance: {balance}")
    assert balance == 70, "the charge must happen exactly once"
    return code


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        raise SystemExit(main(Path(tmp) / "app.db"))
