"""A durable step whose effects are the application's database writes (`ctx.transaction(step=)`).

The step is recorded (kind `txn`) in the same transaction as the writes, fenced on the job's
lease: the writes and the record commit together or not at all, so a re-run finds the step done
exactly when its writes are in the database. A re-run runs the block again in a transaction that
is rolled back (`done`), so the block's writes happen once.
"""

from __future__ import annotations

from collections.abc import Callable

from wireframe.durable.errors import LeaseLost
from wireframe.store import Lease, LeaseStatus
from wireframe.store.transactional import Bound

KIND = "txn"
"""The checkpoint kind of a transaction step."""


class TransactionStep:
    """One transaction step at its position: done on an earlier run, or to record now."""

    def __init__(
        self,
        *,
        done: bool,
        lease: Lease,
        position: int,
        identity: str,
        lease_ttl: float,
        remember: Callable[[int, str, str, str | None], None],
    ) -> None:
        self.done = done
        """True if an earlier run committed this step (its writes are in the database)."""
        self._lease = lease
        self._position = position
        self._identity = identity
        self._ttl = lease_ttl
        self._remember = remember

    async def record(self, bound: Bound) -> None:
        """Write the step's checkpoint in the transaction of `bound`, fenced on the lease;
        LeaseLost (nothing written) if the lease is no longer held."""
        status = await bound.put_checkpoint(
            self._lease, self._position, self._identity, KIND, None, self._ttl
        )
        if status is not LeaseStatus.OK:
            raise LeaseLost(status)

    def committed(self) -> None:
        """The transaction committed: later calls of this run see the step as recorded."""
        self._remember(self._position, self._identity, KIND, None)
