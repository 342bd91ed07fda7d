"""Rules every store applies alike, whatever keeps its rows (the SQL engine or plain objects)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from wireframe.store.errors import InvalidTransitionError
from wireframe.store.records import TERMINAL_STATES


def retry_waits(
    job_id: int, deps: Sequence[int], policy: str, states: Mapping[int, str]
) -> list[int]:
    """Which of the remembered dependencies `deps` of job `job_id`, to retry, are still active.

    `states` holds the state of each dependency that still exists. Completed ones are met (with
    the "ignore" policy, so is every ended one, even one pruned since). Raises
    InvalidTransitionError naming each one that ended otherwise, or that was pruned (how it
    ended is unknown).
    """
    waiting: list[int] = []
    failed: list[str] = []
    pruned: list[str] = []
    for dep in deps:
        state = states.get(dep)
        if state is None:
            if policy != "ignore":
                pruned.append(f"job {dep}")
        elif state not in TERMINAL_STATES:
            waiting.append(dep)
        elif state != "completed" and policy != "ignore":
            failed.append(f"job {dep} ({state})")
    reasons: list[str] = []
    if failed:
        them = "it" if len(failed) == 1 else "them"
        reasons.append(f"{', '.join(failed)}, which ended without completing: retry {them} first")
    if pruned:
        they = "it" if len(pruned) == 1 else "they"
        reasons.append(
            f"{', '.join(pruned)}, since pruned, so whether {they} completed is unknown: "
            "submit a new job instead"
        )
    if reasons:
        raise InvalidTransitionError(f"retry: job {job_id} depends on {'; and on '.join(reasons)}")
    return waiting


def reclaim_reason(worker: str | None, lost: int, max_reclaims: int) -> str:
    """Why a job's lease was taken back: its worker's `lost`-th loss of `max_reclaims` allowed.

    Past the budget it says the job gave up (and that is the job's error).
    """
    expired = f"lease of worker {worker} expired"
    if lost > max_reclaims:
        times = "time" if lost == 1 else "times"
        return (
            f"worker lost {lost} {times} (last: {expired}); "
            f"gave up after max_reclaims={max_reclaims}"
        )
    return f"{expired} (reclaim {lost} of max_reclaims={max_reclaims})"
