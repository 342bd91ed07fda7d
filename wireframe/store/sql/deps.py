"""What a job waits on: its dependency edges, and the list it keeps once the edges are gone.

`job_deps` holds one edge per dependency a job still waits on; an edge goes when that dependency
completes, and all of a job's edges go when the job ends. So that a retry can tell which
dependencies a job never saw complete, a job that blocks (or is born ended because a dependency
failed) also keeps their ids in `jobs.deps` (JSON), cleared once they are all met.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from wireframe.store.rules import retry_waits
from wireframe.store.sql.locks import lock
from wireframe.store.sql.rows import chunks, placeholders
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


def wait_on(tx: Tx, job_id: int, deps: Sequence[int]) -> None:
    """Make a job wait on `deps`: its edges, their dependents flag and its remembered list."""
    tx.executemany(
        "INSERT INTO job_deps (job_id, dep_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
        [(job_id, dep) for dep in deps],
    )
    tx.executemany(
        "UPDATE jobs SET has_dependents = 1 WHERE id = ? AND has_dependents = 0",
        [(dep,) for dep in sorted(deps)],
    )
    remember(tx, [(job_id, deps)])


def still_waiting(tx: Tx, job_id: int, policy: str, deps_json: str | None) -> list[int]:
    """The remembered dependencies of a job to retry that are still active.

    Completed ones are met (with the "ignore" policy, so is every ended one, even one pruned
    since). Raises InvalidTransitionError naming each one that ended otherwise, or that was
    pruned (how it ended is unknown).
    """
    deps = list(dict.fromkeys(int(d) for d in json.loads(deps_json))) if deps_json else []
    if not deps:
        return []
    found: dict[int, str] = {}
    # Locked, so a dependency ending concurrently sees the edges this transaction restores.
    lock(tx, deps)
    for part in chunks(sorted(deps)):
        found.update(
            tx.execute(
                f"SELECT id, state FROM jobs WHERE id IN ({placeholders(len(part))}) ORDER BY id",
                tuple(part),
            ).fetchall()
        )
    return retry_waits(job_id, deps, policy, found)
