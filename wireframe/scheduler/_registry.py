"""The job types a scheduler or worker knows: by name, by payload class, and their state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from wireframe.scheduler.domain import Domain, JobType
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.submission import build_job
from wireframe.store import NewJob


class Registry:
    """Domains and their job types, indexed for submission and for running jobs.

    Contract: built once from the domains given (two domains of one name are an error naming
    it); `job_type` resolves a payload (or an explicit type) to exactly one job type or raises
    ConfigError listing the known types; `state` finds shared state for a handler, its domain's
    first, then the scheduler's.
    """

    def __init__(self, domains: Iterable[Domain], *, where: str) -> None:
        self.domains: dict[str, Domain] = {}
        for domain in domains:
            if not isinstance(domain, Domain):
                raise ConfigError(f"{where} domains: {domain!r} is not a Domain")
            if domain.name in self.domains:
                raise ConfigError(f"{where} domains: two domains are named {domain.name!r}")
            self.domains[domain.name] = domain
        self.types: dict[str, JobType[Any, Any]] = {
            t.type: t for d in self.domains.values() for t in d.jobs.values()
        }
        self._by_payload: dict[type, list[JobType[Any, Any]]] = {}
        for job_type in self.types.values():
            if job_type.payload_type is not None and job_type.payload_type is not dict:
                self._by_payload.setdefault(job_type.payload_type, []).append(job_type)
        self.shared: dict[type, object] = {}

    def provide(self, value: object) -> None:
        """Make `value` available to every handler as `ctx.state(type(value))`."""
        self.shared[type(value)] = value

    def known(self) -> str:
        """The known job type names, for error messages."""
        return ", ".join(sorted(self.types)) or "none"

    def job_type(
        self, payload: object, type: str | JobType[Any, Any] | None = None
    ) -> JobType[Any, Any]:
        """The job type a payload (or an explicit `type`) resolves to; a clear error otherwise."""
        if isinstance(type, JobType):
            if type.type not in self.types:
                raise ConfigError(
                    f"submit: job type {type.type!r} is not in this scheduler's domains"
                )
            return type
        if type is not None:
            return self._named(type)
        candidates = self._by_payload.get(payload.__class__, [])
        if len(candidates) == 1:
            return candidates[0]
        name = payload.__class__.__qualname__
        if candidates:
            names = ", ".join(t.type for t in candidates)
            raise ConfigError(f"submit: payload type {name} is used by {names}; pass type=")
        raise ConfigError(
            f"submit: no job type takes a payload of type {name}; "
            f"pass type='domain::name' (known types: {self.known()})"
        )

    def _named(self, type: str) -> JobType[Any, Any]:
        found = self.types.get(type)
        if found is None:
            domain = type.split("::", 1)[0]
            hint = "unknown domain" if domain not in self.domains else "unknown job type"
            raise ConfigError(f"submit: {hint} in {type!r}; known types: {self.known()}")
        return found

    def build_job(
        self,
        payload: object,
        type: str | JobType[Any, Any] | None,
        options: dict[str, Any],
        budgets: Mapping[str, int] | None,
    ) -> NewJob:
        """Validate a submission and build its store row (nothing is written)."""
        return build_job(self.job_type(payload, type), payload, budgets=budgets, **options)

    def state(self, job_type: str, cls: type) -> object | None:
        """Shared state of type `cls` for a job of `job_type`: its domain's, else the shared."""
        domain = self.domains.get(job_type.split("::", 1)[0])
        found = domain.state_for(cls) if domain is not None else None
        if found is None:
            found = self.shared.get(cls)
        if found is None:
            found = next((v for v in self.shared.values() if isinstance(v, cls)), None)
        return found
