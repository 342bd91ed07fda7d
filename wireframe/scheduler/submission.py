"""Turning a `submit(...)` call into a validated store row; every bad value is named here."""

from __future__ import annotations

import datetime as dt
import json
import math
import time
from collections.abc import Iterable, Mapping
from typing import Any

from wireframe.scheduler._flow_options import check_flow
from wireframe.scheduler._meta import META_MAX_CHARS as META_MAX_CHARS
from wireframe.scheduler._meta import check_meta as check_meta
from wireframe.scheduler.codec import encode_payload
from wireframe.scheduler.domain import JobType, check_max_reclaims, check_resources, check_tags
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.flow import submitted
from wireframe.scheduler.keys import flow_fields
from wireframe.scheduler.priority import coerce_priority
from wireframe.scheduler.recurring import Recurrence
from wireframe.store import NewJob, NewSchedule
from wireframe.store.records import DEPENDENCY_POLICIES


def _seconds(value: object, *, where: str, allow_zero: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{where} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


def _timestamp(value: object, *, where: str) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ConfigError(
                f"{where}: datetime {value!r} has no time zone; pass an aware datetime"
            )
        return value.timestamp()
    return _seconds(value, where=where, allow_zero=True)


def _job_ids(value: Iterable[object], *, where: str) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ConfigError(f"{where} must be a list of job ids, got {value!r}")
    ids: list[int] = []
    for item in value:
        job_id = getattr(item, "id", item)
        if isinstance(job_id, bool) or not isinstance(job_id, int) or job_id < 1:
            raise ConfigError(f"{where}: {item!r} is not a job id")
        ids.append(job_id)
    return tuple(dict.fromkeys(ids))


def build_job(
    job_type: JobType[Any, Any],
    payload: object,
    *,
    budgets: Mapping[str, int] | None,
    priority: object = None,
    delay: object = None,
    run_at: object = None,
    key: object = None,
    depends_on: Iterable[object] = (),
    on_dependency_failure: str = "cancel",
    parent: object = None,
    tags: Iterable[str] | None = None,
    ttl: object = None,
    recurring: object = None,
    fail_fast: bool = True,
    resources: Mapping[str, int] | None = None,
    max_reclaims: object = None,
    meta: Mapping[str, str] | None = None,
    debounce: object = None,
    throttle: object = None,
) -> NewJob:
    """Validate every submission option for `job_type` and build the row to insert."""
    where = f"submit {job_type.type}"
    text = encode_payload(
        payload,
        expected=job_type.payload_type,
        where=f"{where} payload",
        shape=job_type.payload_shape,
    )
    prio = (
        job_type.effective_priority
        if priority is None
        else coerce_priority(priority, where=f"{where} priority")
    )
    now = time.time()
    if delay is not None and run_at is not None:
        raise ConfigError(
            f"{where}: give delay= or run_at=, not both (delay={delay!r}, run_at={run_at!r})"
        )
    start: float | None = None
    if delay is not None:
        start = now + _seconds(delay, where=f"{where} delay", allow_zero=True)
    elif run_at is not None:
        start = _timestamp(run_at, where=f"{where} run_at")
    key = key_of(job_type, payload, key, where=where)
    deps = _job_ids(depends_on, where=f"{where} depends_on")
    if on_dependency_failure not in DEPENDENCY_POLICIES:
        raise ConfigError(
            f"{where}: on_dependency_failure must be one of {', '.join(DEPENDENCY_POLICIES)}, "
            f"got {on_dependency_failure!r}"
        )
    parent_id = None if parent is None else _job_ids([parent], where=f"{where} parent")[0]
    all_tags = tuple(sorted(set(check_tags(tags, where=f"{where} tags")) | set(job_type.tags)))
    needs = (
        check_resources(resources, where=f"{where} resources")
        if resources is not None
        else dict(job_type.resources)
    )
    if budgets is not None:
        for name, amount in needs.items():
            if amount > budgets.get(name, 0):
                raise ConfigError(
                    f"{where}: resource {name!r} x{amount} exceeds the worker budget "
                    f"({budgets.get(name, 0)}); the job could never run"
                )
    ttl_value = (
        job_type.ttl if ttl is None else _seconds(ttl, where=f"{where} ttl", allow_zero=False)
    )
    schedule = None
    if recurring is not None:
        if not isinstance(recurring, Recurrence):
            raise ConfigError(
                f"{where}: recurring must be Every(...) or Cron(...), got {recurring!r}"
            )
        if start is not None or deps or parent_id is not None:
            raise ConfigError(
                f"{where}: a recurring job takes no delay, run_at, depends_on or parent "
                f"(use initial_delay on Every)"
            )
        start = recurring.first_run(now)
        following = recurring.next_run(start)
        schedule = NewSchedule(
            json.dumps(recurring.to_json()),
            following,
            recurring.max_occurrences,
            recurring.overlap,
        )
    debounced, throttled = check_flow(
        where,
        key=key,
        debounce=debounce,
        throttle=throttle,
        timed=start is not None and recurring is None,
        linked=bool(deps) or parent_id is not None,
        recurring=recurring is not None,
    )
    if debounced is not None:
        start = now + debounced
    expires_at = None if ttl_value is None else (start if start is not None else now) + ttl_value
    if not isinstance(fail_fast, bool):
        raise ConfigError(f"{where}: fail_fast must be a bool, got {fail_fast!r}")
    reclaims = (
        job_type.max_reclaims
        if max_reclaims is None
        else check_max_reclaims(max_reclaims, where=f"{where} max_reclaims")
    )
    rate_key, cost = submitted(job_type, payload, where=where)
    flow_key, key_cap, key_weight = flow_fields(job_type.key_policy, payload, where=where)
    return NewJob(
        type=job_type.type,
        domain=job_type.domain.name,
        payload=text,
        priority=prio,
        run_at=start,
        key=key,
        depends_on=deps,
        on_dependency_failure=on_dependency_failure,  # type: ignore[arg-type]
        parent_id=parent_id,
        tags=all_tags,
        resources=needs,
        expires_at=expires_at,
        max_attempts=job_type.retry.attempts,
        fail_fast=fail_fast,
        recurring=schedule,
        max_reclaims=reclaims,
        rate_key=rate_key,
        cost=cost,
        meta=check_meta(meta, where=f"{where} meta") if meta else {},
        debounce=debounced,
        throttle=throttled,
        flow_key=flow_key,
        key_cap=key_cap,
        key_weight=key_weight,
    )


def key_of(job_type: JobType[Any, Any], payload: object, key: object, *, where: str) -> str | None:
    """The dedup key of a submission: the explicit one, or the job type's key callable's."""
    if key is None and job_type.key is not None:
        key = job_type.key(payload)
        if not isinstance(key, str) or not key:
            raise ConfigError(
                f"{where}: the key callable returned {key!r}; it must return a non-empty str"
            )
    elif key is not None and (not isinstance(key, str) or not key):
        raise ConfigError(f"{where}: key must be a non-empty str, got {key!r}")
    return key
