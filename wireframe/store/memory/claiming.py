"""Which claim a request makes: housekeeping first, then a plain or a rate-limited claim.

The entry point of `MemoryStore.claim` and `finish_and_claim`. The plain claim is in `claim.py`,
the claim under rate limits in `rates.py` (built on `claim.py`'s candidates and leases); this
module keeps the choice between them out of both, so neither imports the other's caller.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wireframe.store.memory.claim import claim_plain, lanes_for
from wireframe.store.memory.flows import unpaused
from wireframe.store.memory.housekeep import housekeep
from wireframe.store.memory.rates import claim_rated
from wireframe.store.memory.table import Table
from wireframe.store.records import ClaimRequest, JobRecord

Chooser = Callable[[Sequence[JobRecord]], Sequence[int]]


def claim(tb: Table, req: ClaimRequest, chooser: Chooser | None) -> list[JobRecord]:
    """Lease up to `req.limit` pending jobs, best priority first, then by turns of their
    concurrency keys (FIFO without keys); never past a key's cap nor a rate limit's tokens."""
    if req.housekeep:
        housekeep(tb)
    if req.limit <= 0 or not req.domains:
        return []
    req = unpaused(tb, req)
    lanes = lanes_for(tb, req)
    if req.rates:
        return claim_rated(tb, req, chooser, lanes)
    return claim_plain(tb, req, chooser, lanes)
