"""Rules every store applies alike, whatever keeps its rows (the SQL engine or plain objects)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Literal

from wireframe.store.errors import InvalidTransitionError
from wireframe.store.records import TERMINAL_STATES, NewJob, Overlap

FireAction = Literal["submit", "skip", "queue"]
"""What firing a schedule does: submit an occurrence, skip it, or submit it behind the active
run (blocked on it until it ends, however it ends)."""


def fire_action(overlap: str, active: bool, started: bool) -> FireAction:
    """What a firing does under the schedule's `overlap` policy, given its previous run: whether
    that run has not ended (`active`) and whether it ever started (`started`).

    `skip`: nothing while the run is active. `queue`: one occurrence waits behind an active run
    that started; while the previous occurrence has not started (it is the one waiting, or it
    waits for a worker), the firing is skipped. `allow`: every firing submits.
    """
    if not active or overlap == Overlap.ALLOW:
        return "submit"
    if overlap == Overlap.QUEUE and started:
        return "queue"
    return "skip"


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


def occurrence(template: str, run_at: float, behind: int | None) -> NewJob:
    """The job of one occurrence, from its schedule's template; `behind`: the active run it
    waits for (it starts once that run ends, however it ends).

    The ttl counts from the occurrence's own run time; a template stored before the ttl was
    kept has no "ttl" (and the first occurrence's absolute `expires_at`): no expiry.
    """
    fields = json.loads(template)
    fields["depends_on"] = tuple(fields.get("depends_on") or ())
    if behind is not None:
        fields["depends_on"] = (behind,)
        fields["on_dependency_failure"] = "ignore"
    fields["tags"] = tuple(fields.get("tags") or ())
    ttl = fields.pop("ttl", None)
    fields["expires_at"] = None if ttl is None else run_at + ttl
    return NewJob(**{**fields, "run_at": run_at})
