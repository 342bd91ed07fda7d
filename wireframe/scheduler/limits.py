"""Concurrency and resource accounting of one worker, and the claim chooser built from it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

from wireframe.store import Chooser, JobRecord


class Limits:
    """What one worker runs now, against its global, per-domain, per-type and resource limits."""

    def __init__(
        self,
        max_concurrency: int,
        domain_limits: Mapping[str, int],
        type_limits: Mapping[str, int],
        budgets: Mapping[str, int],
    ) -> None:
        self.max_concurrency = max_concurrency
        self.domain_limits = dict(domain_limits)
        self.type_limits = dict(type_limits)
        self.budgets = dict(budgets)
        self.running = 0
        self.by_domain: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.in_use: Counter[str] = Counter()

    @property
    def constrained(self) -> bool:
        """True if any limit besides the global one applies (claims then need a chooser)."""
        return bool(self.domain_limits or self.type_limits or self.budgets)

    @property
    def free(self) -> int:
        """Slots free under the global limit."""
        return self.max_concurrency - self.running

    def take(self, job: JobRecord) -> None:
        """Count a claimed job in."""
        # Per-domain, per-type and resource counts are kept only where a limit reads them.
        self.running += 1
        if self.domain_limits:
            self.by_domain[job.domain] += 1
        if self.type_limits:
            self.by_type[job.type] += 1
        if job.resources:
            self.in_use.update(job.resources)

    def give_back(self, job: JobRecord) -> None:
        """Count a finished job out."""
        self.running -= 1
        if self.domain_limits:
            self.by_domain[job.domain] -= 1
        if self.type_limits:
            self.by_type[job.type] -= 1
        if job.resources:
            self.in_use.subtract(job.resources)

    def can_take(self, job: JobRecord) -> bool:
        """True if one more `job` fits under every limit right now."""
        if self.free <= 0:
            return False
        cap = self.domain_limits.get(job.domain)
        if cap is not None and self.by_domain[job.domain] >= cap:
            return False
        cap = self.type_limits.get(job.type)
        if cap is not None and self.by_type[job.type] >= cap:
            return False
        return all(
            self.budgets.get(name, 0) - self.in_use[name] >= amount
            for name, amount in job.resources.items()
        )

    def full_domains(self) -> tuple[str, ...]:
        """Domains at their concurrency limit."""
        return tuple(d for d, cap in self.domain_limits.items() if self.by_domain[d] >= cap)

    def full_types(self) -> tuple[str, ...]:
        """Job types at their concurrency limit."""
        return tuple(t for t, cap in self.type_limits.items() if self.by_type[t] >= cap)

    def chooser(self, limit: int) -> Chooser:
        """A chooser over a snapshot of the counts: respects every limit, and reserves a resource
        for the best candidate that cannot get it yet, so big jobs do not starve behind small ones.
        """
        by_domain = Counter(self.by_domain)
        by_type = Counter(self.by_type)
        free_res = {name: cap - self.in_use[name] for name, cap in self.budgets.items()}
        domain_limits = dict(self.domain_limits)
        type_limits = dict(self.type_limits)

        def choose(candidates: Sequence[JobRecord]) -> list[int]:
            chosen: list[int] = []
            reserved: set[str] = set()
            for job in candidates:
                if len(chosen) >= limit:
                    break
                domain_cap = domain_limits.get(job.domain)
                if domain_cap is not None and by_domain[job.domain] >= domain_cap:
                    continue
                type_cap = type_limits.get(job.type)
                if type_cap is not None and by_type[job.type] >= type_cap:
                    continue
                needs = job.resources
                if any(name in reserved for name in needs):
                    continue
                short = [n for n, amount in needs.items() if free_res.get(n, 0) < amount]
                if short:
                    reserved.update(short)
                    continue
                for name, amount in needs.items():
                    free_res[name] -= amount
                by_domain[job.domain] += 1
                by_type[job.type] += 1
                chosen.append(job.id)
            return chosen

        return choose
