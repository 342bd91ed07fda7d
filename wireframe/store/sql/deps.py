"""What a job waits on: its dependency edges, and the list it keeps once the edges are gone.

`job_deps` holds one edge per dependency a job still waits on; an edge goes when that dependency
completes, and all of a job's edges go when the job ends. So that a retry can tell which
dependencies a job never saw complete, a job that blocks (or is born ended because a dependency
failed) also keeps their ids in `jobs.deps` (JSON), cleared once they are all met.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from wireframe.store.sql.tx import Bulk, Tx, unnest

REMEMBER = Bulk(
    "UPDATE jobs SET deps = ? WHERE id = ?",
    f"UPDATE jobs SET deps = v.deps FROM {unnest('text', 'bigint')} AS v(deps, id) "
    "WHERE jobs.id = v.id",
)
"""Keep the dependencies a job waits on in its row."""


def remember(tx: Tx, waits: Iterable[tuple[int, Sequence[int]]]) -> None:
    """Keep, for each (job id, dependency ids), the dependencies the job waits on."""
    tx.bulk(REMEMBER, [(json.dumps(list(deps)), job_id) for job_id, deps in waits])
