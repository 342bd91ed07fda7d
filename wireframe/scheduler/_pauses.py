"""Pausing a whole domain or job type: the names checked here, the pause kept by the store.

A pause is a row of the store, so every worker process honours it at its next claim: nothing
of the domain (or type) starts, jobs already running go on to their end, pending ones wait
(`wireframe jobs` and `wireframe job` say why). Resuming makes them claimable at once.
"""

from __future__ import annotations

from wireframe.scheduler.errors import ConfigError
from wireframe.store import FlowKind


def flow_name(kind: FlowKind, value: object, where: str) -> str:
    """The name of the domain (a `Domain` or its name) or job type (a `JobType` or its
    ``domain::name``) to pause or resume; ConfigError naming the value otherwise."""
    name = getattr(value, "type" if kind == "type" else "name", value)
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise ConfigError(f"{where}: expected a {kind} or its name, got {value!r}")
    if kind == "domain" and "::" in name:
        raise ConfigError(
            f"{where}: {name!r} is a job type, not a domain (use pause_type / resume_type)"
        )
    if kind == "type":
        domain, sep, rest = name.partition("::")
        if not (sep and domain and rest):
            raise ConfigError(f"{where}: job type {name!r} must be written domain::name")
    return name


def pause_reason(kind: FlowKind, name: str) -> str:
    """Why a pending job of a paused domain or type waits: ``domain media is paused``."""
    return f"{'domain' if kind == 'domain' else 'job type'} {name} is paused"
