"""Concurrency keys in the memory store: the key book and one claim's admission.

Turns are start-time fair queuing: a keyed job is stamped one turn (`stride(weight)`) after its
key's last stamp, and never before the current turn (`clock`: the latest stamp a claim has
taken, 1 at first), so a key that comes back after a pause starts at the current turn instead
of spending credit it saved up. Running counts move with `Table.move`/`Table.start` (`started`,
`stopped`), so every way a job stops running frees its key's place. This module knows nothing
of the table (which holds a `KeyBook`); the reports over the table are in `keys.py`.
"""

from __future__ import annotations

from collections import Counter

from wireframe.store.flowkeys import stride
from wireframe.store.memory.rows import Job
from wireframe.store.records import NewJob

__all__ = ["Admission", "KeyBook"]


class KeyBook:
    """Per key: how many of its jobs run, and the stamp of its last job; the current turn."""

    __slots__ = ("clock", "last", "prune_at", "running")

    def __init__(self) -> None:
        self.running: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.clock = 1
        self.prune_at = 1024

    def stamp(self, row: Job, job: NewJob) -> None:
        """Give a new row its key, cap and turn (before it joins a lane)."""
        key = job.flow_key
        if key is None:
            return
        row.flow_key = key
        row.key_cap = job.key_cap
        last = self.last.get(key)
        seq = self.clock if last is None else max(last + stride(job.key_weight), self.clock)
        row.fair = self.last[key] = seq
        if len(self.last) > self.prune_at:
            # Keys whose last turn is behind the clock would start at the clock anyway.
            clock = self.clock
            self.last = {k: v for k, v in self.last.items() if v >= clock}
            self.prune_at = 2 * len(self.last) + 1024

    def started(self, job: Job) -> None:
        """A keyed job started running: it holds a place of its key; its turn is now."""
        key = job.flow_key
        assert key is not None
        self.running[key] = self.running.get(key, 0) + 1
        if job.fair > self.clock:
            self.clock = job.fair

    def stopped(self, job: Job) -> None:
        """A keyed job stopped running, however it did: its place is free."""
        key = job.flow_key
        assert key is not None
        n = self.running[key] - 1
        if n:
            self.running[key] = n
        else:
            del self.running[key]


class Admission:
    """One claim's view of the caps: which candidates it may still take."""

    __slots__ = ("book", "taken")

    def __init__(self, book: KeyBook) -> None:
        self.book = book
        self.taken: Counter[str] = Counter()

    def admits(self, job: Job) -> bool:
        """True (and counted) if `job` may start: no cap, or its key is under it."""
        cap = job.key_cap
        if cap is None:
            return True
        key = job.flow_key
        assert key is not None
        if self.book.running.get(key, 0) + self.taken[key] >= cap:
            return False
        self.taken[key] += 1
        return True
