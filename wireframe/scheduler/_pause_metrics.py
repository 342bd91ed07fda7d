"""The gauges of paused domains and job types, for `wireframe.scheduler.metrics`.

Labels stay bounded: only the domains and job types this process registers are reported (1 when
paused, 0 otherwise); a pause of a name it does not know is left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from wireframe.service.metrics import MetricFamily, gauge
from wireframe.store import PausedFlow


def paused_gauges(
    domains: Iterable[str], types: Mapping[str, tuple[str, str]], flows: Iterable[PausedFlow]
) -> list[MetricFamily]:
    """`wireframe_domain_paused` per domain and `wireframe_type_paused` per job type (`types`:
    each type's (domain, type) labels)."""
    paused = {(f.kind, f.name) for f in flows}
    return [
        gauge(
            "wireframe_domain_paused",
            "1 while the domain is paused (no job of it starts, in any process), else 0.",
            [({"domain": d}, int(("domain", d) in paused)) for d in sorted(domains)],
        ),
        gauge(
            "wireframe_type_paused",
            "1 while the job type is paused (no job of it starts, in any process), else 0.",
            [
                ({"domain": d, "type": t}, int(("type", t) in paused))
                for d, t in sorted(types.values())
            ],
        ),
    ]
