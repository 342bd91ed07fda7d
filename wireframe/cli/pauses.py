"""How the inspection commands show paused domains and job types, and the jobs they hold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from wireframe.scheduler._pauses import pause_reason
from wireframe.store import JobRecord, JobState, PausedFlow


def flow_dict(flow: PausedFlow) -> dict[str, Any]:
    """A paused domain or type as JSON-able data."""
    return {"kind": flow.kind, "name": flow.name, "paused_at": flow.paused_at}


def held_by_pause(job: JobRecord, flows: Sequence[PausedFlow]) -> str | None:
    """Why a pending job waits for a paused domain or type (``domain media is paused``), or
    None when it is not pending or nothing of it is paused."""
    if job.state is not JobState.PENDING:
        return None
    for flow in flows:
        if (flow.kind == "domain" and flow.name == job.domain) or (
            flow.kind == "type" and flow.name == job.type
        ):
            return pause_reason(flow.kind, flow.name)
    return None


def paused_text(flows: Sequence[PausedFlow]) -> str:
    """``paused: domain media, type mail::send`` (for `top`), or '' when nothing is."""
    if not flows:
        return ""
    return "paused: " + ", ".join(f"{f.kind} {f.name}" for f in flows)


def held_by_pauses(jobs: Sequence[JobRecord], flows: Sequence[PausedFlow]) -> dict[int, str]:
    """`held_by_pause` of each job that a pause holds, by job id."""
    if not flows:
        return {}
    return {job.id: why for job in jobs if (why := held_by_pause(job, flows)) is not None}


def waits(held: Mapping[int, str], job_id: int) -> dict[str, str]:
    """``{"waits": why}`` for a job a pause holds (added to its JSON), else nothing."""
    why = held.get(job_id)
    return {} if why is None else {"waits": why}
