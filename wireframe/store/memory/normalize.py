"""New jobs' values as the SQL rows store them: tags, resources and a schedule's template."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs

from wireframe.store.records import NewJob

Shape = tuple[tuple[str, ...], "dict[str, Any] | None"]


def normalized(job: NewJob) -> Shape:
    """Tags and resources as the SQL row stores them (sorted, deduplicated, JSON values)."""
    tags = tuple(json.loads(json.dumps(sorted(set(job.tags))))) if job.tags else ()
    resources = (
        json.loads(json.dumps(dict(job.resources), sort_keys=True)) if job.resources else None
    )
    return tags, resources


def shapes_of(jobs: Sequence[NewJob]) -> list[Shape]:
    """`normalized` of every job (worked out once for a run of jobs of the same shape)."""
    out: list[Shape] = []
    last: tuple[object, object] | None = None
    shape: Shape = ((), None)
    for job in jobs:
        this = (job.tags, job.resources)
        if last is None or this != last:
            last, shape = this, normalized(job)
        out.append(shape)
    return out


def template_of(job: NewJob, now: float) -> str:
    """The JSON template a recurring submission's schedule copies (see the SQL engine).

    The ttl stays relative (`expires_at` minus the first occurrence's run time), so that every
    occurrence expires as long after its own run time as the first one does.
    """
    template = attrs.asdict(
        attrs.evolve(job, recurring=None, run_at=None, key=None, expires_at=None)
    )
    template["resources"] = dict(job.resources)
    run_at = job.run_at if job.run_at is not None else now
    template["ttl"] = None if job.expires_at is None else job.expires_at - run_at
    return json.dumps(template)
