"""What a scheduler or worker records of its job types in the store (`Store.record_job_types`):
each payload's field description and each type's settings, as JSON that tools without the
handlers' code read back (`wireframe types`, `wireframe submit`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from wireframe.scheduler._shapes import describe_hint
from wireframe.scheduler.domain import JobType
from wireframe.scheduler.flow import rate_settings
from wireframe.scheduler.keys import key_settings
from wireframe.store import NewJobType


def settings_of(job_type: JobType[Any, Any]) -> dict[str, Any]:
    """A job type's settings as JSON: what a submit of it gets unless it says otherwise."""
    return {
        "max_attempts": job_type.retry.attempts,
        "retry": job_type.retry.to_json(),
        "priority": job_type.effective_priority,
        "timeout": job_type.timeout,
        "ttl": job_type.ttl,
        "tags": list(job_type.tags),
        "resources": dict(job_type.resources),
        "max_concurrency": job_type.max_concurrency,
        "max_reclaims": job_type.max_reclaims,
        "preemptible": job_type.preemptible,
        "key": job_type.key is not None,
        "finalize": job_type.finalize_fn is not None,
        **rate_settings(job_type.flow),
        **key_settings(job_type.key_policy),
    }


def payload_description(job_type: JobType[Any, Any]) -> dict[str, Any]:
    """A job type's payload as JSON: its fields, their types, which are required, defaults."""
    return describe_hint(job_type.payload_shape)


def catalog(types: Iterable[JobType[Any, Any]], recorded_by: str) -> list[NewJobType]:
    """The records of these job types."""
    return [
        NewJobType(
            type=t.type,
            domain=t.domain.name,
            name=t.name,
            payload=_json(payload_description(t)),
            settings=_json(settings_of(t)),
            recorded_by=recorded_by,
        )
        for t in types
    ]


def _json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
