"""The leases of a worker: renewed by heartbeats, which also carry cancel and pause requests
from the store to the running handlers, and the handlers' latest progress to the store."""

from __future__ import annotations

from collections.abc import Callable

import anyio

from wireframe.scheduler._executor import Executor
from wireframe.scheduler._running import Interrupt, Running
from wireframe.scheduler.clock import Clock
from wireframe.store import Beat, LeaseStatus, Store

PROGRESS_EVERY = 1.0
"""Seconds a worker gathers progress changes before it stores them, in one beat of the jobs
whose progress changed (and so renews their leases too)."""


class Leases:
    """Renews the leases of every job a worker holds, every `interval` seconds or on demand.

    Contract: a lease reported lost, or a cancel or pause request, interrupts the job's handler
    (cancellation after `cancel_grace` for a cancel request, at once otherwise); jobs whose
    outcome is not written yet (`unwritten()`) keep their lease too, so a slow write never
    lets another worker reclaim, and run again, a job that has already finished here. Each
    renewal moves the job's `lease_deadline` to when the beat was sent plus `claim_ttl`.
    A progress change (`progressed(job_id)`) reaches the store within `progress_every` seconds:
    the changes of that time go in one beat of just the jobs that changed; no change, no beat.
    """

    def __init__(
        self,
        store: Store,
        executor: Executor,
        *,
        claim_ttl: float,
        cancel_grace: float,
        clock: Clock,
        unwritten: Callable[[], list[Beat]],
        progress_every: float = PROGRESS_EVERY,
    ) -> None:
        self.store = store
        self.executor = executor
        self.claim_ttl = claim_ttl
        self.cancel_grace = cancel_grace
        self.interval = min(claim_ttl / 4, 15.0)
        self.clock = clock
        self._unwritten = unwritten
        self.progress_every = progress_every
        self._progressed: set[int] = set()
        self._changed = anyio.Event()

    async def run(self) -> None:
        """Renew every lease every `interval` seconds and store progress changes, until
        cancelled."""
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._renew_every)
            tg.start_soon(self._carry_progress)

    async def _renew_every(self) -> None:
        while True:
            await anyio.sleep(self.interval)
            await self.check_requests()

    def progressed(self, job_id: int) -> None:
        """A job's progress changed since its last beat: store it within `progress_every`."""
        self._progressed.add(job_id)
        self._changed.set()

    async def _carry_progress(self) -> None:
        """After each first change, wait `progress_every` seconds, then beat what changed."""
        while True:
            await self._changed.wait()
            await anyio.sleep(self.progress_every)
            self._changed = anyio.Event()
            held = self.executor.running
            changed = [
                held[i] for i in sorted(self._progressed) if i in held and held[i].progress_due
            ]
            self._progressed.clear()
            if changed:
                await self._beat(changed, [])

    async def check_requests(self) -> None:
        """Renew every lease now, so cancel and pause requests reach running handlers at once."""
        current = list(self.executor.running.values())
        unwritten = self._unwritten()
        if current or unwritten:
            await self._beat(current, unwritten)

    async def _beat(self, current: list[Running], unwritten: list[Beat]) -> None:
        """Renew the leases of `current` (carrying their progress) and of `unwritten`."""
        for running in current:
            running.progress_due = False  # a change from now on is due again
        sent = self.clock.monotonic()
        status = await self.store.heartbeat([_beat(r) for r in current] + unwritten, self.claim_ttl)
        held = self.executor.running
        for running in current:
            if running.record.id in held:
                self._apply(running, status.get(running.record.id, LeaseStatus.LOST), sent)

    async def renew(self, running: Running) -> bool:
        """Renew one lease at once; False (and the handler interrupted) if it was lost."""
        running.progress_due = False
        sent = self.clock.monotonic()
        status = await self.store.heartbeat([_beat(running)], self.claim_ttl)
        found = status.get(running.record.id, LeaseStatus.LOST)
        self._apply(running, found, sent)
        await anyio.lowlevel.checkpoint()
        return found is not LeaseStatus.LOST

    async def heartbeat(self, job_id: int) -> None:
        """`ctx.heartbeat()`: renew one job's lease now."""
        running = self.executor.running.get(job_id)
        if running is not None:
            await self.renew(running)

    def _apply(self, running: Running, status: LeaseStatus, sent: float) -> None:
        if status is LeaseStatus.LOST:
            running.interrupt(Interrupt.LEASE_LOST)
            return
        running.lease_deadline = max(running.lease_deadline, sent + self.claim_ttl)
        if status is LeaseStatus.CANCEL_REQUESTED:
            running.interrupt(Interrupt.CANCELLED, self.cancel_grace)
        elif status is LeaseStatus.PAUSE_REQUESTED:
            running.interrupt(Interrupt.PAUSED)


def _beat(running: Running) -> Beat:
    return Beat(running.record.lease, running.progress, running.message)
