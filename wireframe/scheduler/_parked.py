"""The end of a handler's parked transaction (`ctx.transaction()` without `step`): committed
with the job's completion, fenced on the lease, or rolled back (see `_transaction`).

Apart from `_transaction` so that module, which the job context imports for
`HandlerTransaction`, needs nothing of a running job's book-keeping nor of its outcomes.
"""

from __future__ import annotations

import logging

import anyio

from wireframe.scheduler._outcome import failure
from wireframe.scheduler._running import Running
from wireframe.scheduler._transaction import Committed
from wireframe.store import Complete, Outcome

log = logging.getLogger("wireframe.scheduler")


async def discard(running: Running) -> None:
    """Roll back the transaction parked on `running`, if any (the handler did not complete)."""
    lent, running.txn = running.txn, None
    if lent is not None:
        with anyio.CancelScope(shield=True):
            await lent.rollback()


async def complete_in_transaction(
    running: Running, outcome: Outcome | None
) -> Outcome | Committed | None:
    """Commit the handler's parked transaction with its completion, fenced on the lease.

    Anything but a completion rolls the transaction back and is written as usual. A completion
    refused by the fence (the lease was taken over) rolls back and is dropped; a completion
    whose transaction fails becomes a failed attempt (retried by the job's policy), its writes
    rolled back; a COMMIT that fails leaves the outcome to the database (completed, or
    reclaimed once the lease expires).
    """
    lent, running.txn = running.txn, None
    assert lent is not None
    record = running.record
    with anyio.CancelScope(shield=True):
        if not isinstance(outcome, Complete):
            await lent.rollback()
            return outcome
        try:
            [applied] = await lent.bound.finish([outcome])
        except Exception as exc:
            await lent.rollback()
            return failure(running, f"completing in its transaction: {exc}", exc)
        if not applied:
            await lent.rollback()
            log.warning(
                "job %s: lease lost; its transaction was rolled back",
                record.id,
                extra={"job_id": record.id},
            )
            return None
        try:
            await lent.commit()
        except Exception as exc:
            log.error(
                "job %s: the commit of its transaction failed (%s); the job completed if it "
                "went through, else it runs again once its lease expires",
                record.id,
                exc,
                extra={"job_id": record.id},
            )
            return None
        return Committed(outcome, lent)
    return None  # not reached: the shield catches no exception
