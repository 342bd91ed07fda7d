"""A point-in-time view of the scheduler: counts per domain and state, and the running jobs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

from wireframe.store import JobState


@attrs.frozen
class RunningJob:
    """One running job with its latest progress."""

    id: int
    type: str
    worker_id: str | None
    started_at: float | None
    progress: float | None
    message: str | None
    deferred: bool = False


@attrs.frozen
class Snapshot:
    """Job counts by domain, type and state, plus the running jobs."""

    by_domain: Mapping[str, Mapping[JobState, int]]
    by_type: Mapping[str, Mapping[JobState, int]]
    running: Sequence[RunningJob]

    @classmethod
    def from_counts(
        cls, counts: Mapping[tuple[str, str, JobState], int], running: Sequence[RunningJob]
    ) -> Snapshot:
        """Fold store counts per (domain, type, state) into per-domain and per-type tables."""
        by_domain: dict[str, dict[JobState, int]] = {}
        by_type: dict[str, dict[JobState, int]] = {}
        for (domain, type_, state), n in counts.items():
            by_domain.setdefault(domain, {}).setdefault(state, 0)
            by_domain[domain][state] += n
            by_type.setdefault(type_, {})[state] = n
        return cls(by_domain, by_type, tuple(running))

    @property
    def deferred(self) -> int:
        """Running jobs that gave their slot back while they wait (`defer_until`)."""
        return sum(1 for job in self.running if job.deferred)

    def count(self, state: JobState | str, domain: str | None = None) -> int:
        """How many jobs are in `state` (in one domain, or in all)."""
        wanted = JobState(state)
        domains = [domain] if domain is not None else list(self.by_domain)
        return sum(self.by_domain.get(d, {}).get(wanted, 0) for d in domains)
