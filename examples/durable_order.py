"""An order workflow as a durable job: charge, wait for "shipped" (with a timeout), sleep, notify.

    python examples/durable_order.py

Each side effect is a checkpointed step, so it runs once even though the job runs several times:
it suspends (leaving its slot) while it waits for the "shipped" event and while it sleeps, and
each time it wakes it runs again from the top, replaying what it already did. A shipping service
(here a oneshot task) emits the event from outside the job.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import attrs

from wireframe import (
    Domain,
    EventTimeout,
    JobContext,
    OneshotTask,
    Scheduler,
    Service,
    StopReceiver,
)

orders = Domain("orders")
ledger: list[str] = []


@attrs.frozen
class Order:
    id: str
    amount: int


def charge(order_id: str, amount: int) -> str:
    ledger.append(f"charged {order_id} {amount}")
    return f"receipt-{order_id}"


def notify(order_id: str, tracking: str) -> None:
    ledger.append(f"notified {order_id} ({tracking})")


@orders.job
async def fulfil(order: Order, ctx: JobContext) -> dict[str, str]:
    receipt = await ctx.step("charge", charge, order.id, order.amount)
    try:
        shipped = await ctx.wait_event(f"shipped:{order.id}", timeout=30)
    except EventTimeout:
        await ctx.step("refund", ledger.append, f"refunded {order.id}")
        return {"receipt": receipt, "status": "refunded"}
    await ctx.sleep("cool-off", 0.5)  # durable: the job leaves its slot while it sleeps
    await ctx.step("notify", notify, order.id, shipped["tracking"])
    return {"receipt": receipt, "status": "delivered", "tracking": shipped["tracking"]}


def build(db: Path) -> tuple[Service, Scheduler]:
    scheduler = Scheduler(f"sqlite:///{db}", domains=[orders], poll_interval=0.05)
    service = Service(name="orders")
    service.add_task(scheduler)

    class Shop(OneshotTask):
        id = "shop"

        async def run(self, stop: StopReceiver) -> None:
            out = await scheduler.submit(Order("A-17", 4200))
            job = await scheduler.get(out.id)
            while job is not None and job.state.value != "suspended":
                await stop.wait(0.05)
                job = await scheduler.get(out.id)
            print(f"order job {out.id} is {job.state.value if job else '?'}: waiting for shipping")
            await scheduler.emit_event("shipped:A-17", {"tracking": "1Z999"})
            print("result:", await scheduler.result(out.id, timeout=30))
            service.stop("demo finished")

    service.add_task(Shop())
    return service, scheduler


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        service, _ = build(Path(tmp) / "orders.db")
        code = service.run_sync()
    for line in ledger:
        print("ledger:", line)
    assert ledger.count("charged A-17 4200") == 1, "the charge must happen exactly once"
    raise SystemExit(code)
