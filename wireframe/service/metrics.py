"""Metrics in the Prometheus text format: metric families, a histogram, a registry of collectors.

A collector is a callable returning metric families (or an awaitable of them); the registry
calls every collector at each scrape and renders the result. The service contributes its task
states (``service_collector``); other layers (the scheduler) register their own collectors.
"""

from __future__ import annotations

import bisect
import inspect
import math
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, TypeAlias

import attrs

from wireframe.service.status import TaskState

if TYPE_CHECKING:
    from wireframe.service.service import Service

MetricType = Literal["counter", "gauge", "histogram", "untyped"]
"""The Prometheus metric types this module renders."""

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The HTTP Content-Type of the Prometheus text exposition format."""

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{what} {name!r} is not a valid Prometheus metric name")
    return name


@attrs.frozen
class Sample:
    """One value of a metric family: a name suffix (e.g. ``_bucket``), labels and the value."""

    labels: Mapping[str, str] = attrs.field(factory=dict)
    value: float = 0.0
    suffix: str = ""


@attrs.frozen
class MetricFamily:
    """A named metric with its type, help text and samples."""

    name: str = attrs.field()
    type: MetricType
    help: str
    samples: tuple[Sample, ...] = ()

    @name.validator
    def _valid(self, _attribute: object, value: str) -> None:
        _check_name(value, "metric name")

    def render(self) -> str:
        """The family in the Prometheus text format (HELP, TYPE, then one line per sample)."""
        lines = [
            f"# HELP {self.name} {_escape_help(self.help)}",
            f"# TYPE {self.name} {self.type}",
        ]
        for sample in self.samples:
            lines.append(
                f"{self.name}{sample.suffix}{_labels(sample.labels)} {_number(sample.value)}"
            )
        return "\n".join(lines) + "\n"


def gauge(
    name: str, help: str, values: Iterable[tuple[Mapping[str, str], float]] = ()
) -> MetricFamily:
    """A gauge family from (labels, value) pairs."""
    return MetricFamily(name, "gauge", help, tuple(Sample(dict(lb), float(v)) for lb, v in values))


def counter(
    name: str, help: str, values: Iterable[tuple[Mapping[str, str], float]] = ()
) -> MetricFamily:
    """A counter family from (labels, value) pairs (by convention ``name`` ends in ``_total``)."""
    return MetricFamily(
        name, "counter", help, tuple(Sample(dict(lb), float(v)) for lb, v in values)
    )


DEFAULT_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip
"""Histogram bucket upper bounds (seconds) suited to job durations from milliseconds to 30 min."""


class Histogram:
    """Cumulative-bucket histograms keyed by label values, rendered as one family."""

    def __init__(
        self,
        name: str,
        help: str,
        label_names: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> None:
        self.name = _check_name(name, "histogram name")
        self.help = help
        for label in label_names:
            if not _LABEL.match(label) or label == "le":
                raise ValueError(f"histogram {name!r}: invalid label name {label!r}")
        self.label_names = tuple(label_names)
        bounds = sorted(float(b) for b in buckets)
        if not bounds or any(math.isnan(b) for b in bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(
                f"histogram {name!r}: buckets must be distinct numbers, got {buckets!r}"
            )
        self.buckets = tuple(b for b in bounds if not math.isinf(b))
        self._series: dict[tuple[str, ...], list[float]] = {}

    def observe(self, value: float, *labels: str) -> None:
        """Record one observation for these label values (in the order of ``label_names``)."""
        if len(labels) != len(self.label_names):
            raise ValueError(
                f"histogram {self.name!r}: expected labels {self.label_names}, got {labels!r}"
            )
        series = self._series.get(labels)
        if series is None:
            # per bucket counts (non-cumulative), then +Inf count, then the sum
            series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
        series[bisect.bisect_left(self.buckets, value)] += 1
        series[-1] += value

    def family(self) -> MetricFamily:
        """The histogram as a family: cumulative ``_bucket`` (with ``le``), ``_sum``, ``_count``."""
        samples: list[Sample] = []
        for labels, series in sorted(self._series.items()):
            base = dict(zip(self.label_names, labels, strict=True))
            running = 0.0
            for bound, count in zip(self.buckets, series, strict=False):
                running += count
                samples.append(Sample({**base, "le": _number(bound)}, running, "_bucket"))
            running += series[len(self.buckets)]
            samples.append(Sample({**base, "le": "+Inf"}, running, "_bucket"))
            samples.append(Sample(base, series[-1], "_sum"))
            samples.append(Sample(base, running, "_count"))
        return MetricFamily(self.name, "histogram", self.help, tuple(samples))


Families: TypeAlias = Iterable[MetricFamily]
Collector: TypeAlias = Callable[[], Families | Awaitable[Families]]
"""A callable returning metric families, or an awaitable of them; called at each scrape.

A collector object may also have an ``async def background(self)`` method: the HealthServer
runs it while it serves (e.g. to count events between scrapes)."""


class MetricsRegistry:
    """The collectors behind a ``/metrics`` endpoint, rendered together at each scrape."""

    def __init__(self, collectors: Iterable[Collector] = ()) -> None:
        self._collectors: list[Collector] = []
        for collector in collectors:
            self.register(collector)

    def register(self, collector: Collector) -> Collector:
        """Add a collector (a callable returning families); returns it (usable as a decorator)."""
        if not callable(collector):
            raise TypeError(f"a metrics collector must be callable, got {collector!r}")
        self._collectors.append(collector)
        return collector

    @property
    def collectors(self) -> tuple[Collector, ...]:
        """The registered collectors, in the order added."""
        return tuple(self._collectors)

    async def collect(self) -> list[MetricFamily]:
        """Call every collector; families with the same name are an error naming it."""
        families: list[MetricFamily] = []
        seen: set[str] = set()
        for collector in self._collectors:
            produced = collector()
            if inspect.isawaitable(produced):
                produced = await produced
            for family in produced:
                if family.name in seen:
                    raise ValueError(f"metric family {family.name!r} is produced twice")
                seen.add(family.name)
                families.append(family)
        return families

    async def render(self) -> str:
        """Every collector's families in the Prometheus text format."""
        return render(await self.collect())


def render(families: Iterable[MetricFamily]) -> str:
    """Families in the Prometheus text exposition format."""
    return "".join(family.render() for family in families)


def service_collector(service: Service) -> Collector:
    """A collector of a service's state: readiness, phase and one gauge per task and state."""

    def collect() -> list[MetricFamily]:
        status = service.status()
        name = {"service": status.name}
        supervised = [t for t in status.tasks if t.supervised]
        return [
            gauge(
                "wireframe_service_ready", "1 when the service is ready.", [(name, status.ready)]
            ),
            gauge(
                "wireframe_service_phase",
                "1 for the phase the service is in.",
                [({**name, "phase": status.phase.value}, 1)],
            ),
            gauge(
                "wireframe_tasks",
                "Tasks of the service by kind and state.",
                _task_counts(status.tasks),
            ),
            gauge(
                "wireframe_task_state",
                "1 for the state each task is in.",
                [
                    ({"task": t.id, "kind": t.kind.value, "state": t.state.value}, 1)
                    for t in status.tasks
                ],
            ),
            counter(
                "wireframe_task_restarts_total",
                "Restarts of each supervised task since the service started.",
                [({"task": t.id, "kind": t.kind.value}, t.restarts) for t in supervised],
            ),
        ]

    return collect


def _task_counts(tasks: Iterable[object]) -> list[tuple[dict[str, str], float]]:
    counts: dict[tuple[str, str], int] = {}
    for task in tasks:
        kind = getattr(task, "kind", None)
        state = getattr(task, "state", None)
        if kind is not None and isinstance(state, TaskState):
            key = (kind.value, state.value)
            counts[key] = counts.get(key, 0) + 1
    return [({"kind": k, "state": s}, n) for (k, s), n in sorted(counts.items())]


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    parts = []
    for key, value in labels.items():
        if not _LABEL.match(key):
            raise ValueError(f"invalid metric label name {key!r}")
        parts.append(f'{key}="{_escape_label(str(value))}"')
    return "{" + ",".join(parts) + "}"


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))
