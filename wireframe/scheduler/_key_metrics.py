"""Concurrency key gauges of the scheduler metrics: no label per key, ever.

Per (domain, type) of the types this process registers with a concurrency key (0 where none)
and whatever else the store holds under (other): the pending jobs a key's cap holds back, and
the most jobs one key runs (compare it with `max_per_key`). Read from the store at scrape time
(`Store.key_stats`), across every process sharing it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from wireframe.service.metrics import MetricFamily, gauge
from wireframe.store.flowkeys import KeyStats

Series = tuple[str, str]


def key_gauges(
    stats: Sequence[KeyStats], keyed: Iterable[Series], label_of: Callable[[str, str], Series]
) -> list[MetricFamily]:
    """The two gauges, from the store's `key_stats` and the keyed series this process knows."""
    waiting: dict[Series, int] = dict.fromkeys(keyed, 0)
    busiest: dict[Series, int] = dict.fromkeys(waiting, 0)
    for row in stats:
        series = label_of(row.type, row.domain)
        waiting[series] = waiting.get(series, 0) + row.waiting_on_cap
        busiest[series] = max(busiest.get(series, 0), row.max_running_per_key)
    return [
        gauge(
            "wireframe_jobs_waiting_on_key_cap",
            "Pending jobs held back because their concurrency key runs as many jobs as its "
            "max_per_key allows, by domain and type (all processes).",
            [({"domain": d, "type": t}, n) for (d, t), n in sorted(waiting.items())],
        ),
        gauge(
            "wireframe_key_running_max",
            "The most jobs one concurrency key runs now, by domain and type (all processes).",
            [({"domain": d, "type": t}, n) for (d, t), n in sorted(busiest.items())],
        ),
    ]
