"""examples/grafana-dashboard.json and examples/prometheus-alerts.yml: they parse, have the shape
Grafana and Prometheus load, and ask only for metrics and labels that wireframe exposes."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from wireframe import Domain, JobContext, Scheduler, Service, scheduler_metrics
from wireframe.scheduler.events import JobCompleted, JobFailedEvent, JobStarted
from wireframe.service.metrics import MetricsRegistry, service_collector
from wireframe.store import MemoryStore

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
_SELECTOR = re.compile(r"\b(wireframe_[a-z_]+)\b(?:\{([^}]*)\})?")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_BY = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


async def exposed() -> dict[str, set[str]]:
    """Every sample name a scheduler and its service expose, with the label names it carries."""
    media = Domain("media")

    @media.job
    async def resize(job: dict[str, Any], ctx: JobContext) -> None:
        """Never runs: the events below stand for one run."""

    scheduler = Scheduler(MemoryStore(), domains=[media])
    registry = MetricsRegistry(
        [service_collector(Service("svc", handle_signals=False)), scheduler_metrics(scheduler)]
    )
    for event in (
        JobStarted(job_id=1, job_type="media::resize", attempt=1, worker_id="w", queued_for=0.1),
        JobFailedEvent(
            job_id=1, job_type="media::resize", error="E: x", attempt=1, will_retry=False
        ),
        JobCompleted(job_id=2, job_type="media::resize", duration=0.2),
    ):
        scheduler.events.publish(event)
    names: dict[str, set[str]] = {}
    for family in await registry.collect():
        for sample in family.samples:
            names.setdefault(family.name + sample.suffix, set()).update(sample.labels)
    await scheduler.close()
    return names


def dashboard() -> dict[str, Any]:
    return json.loads((EXAMPLES / "grafana-dashboard.json").read_text())


def rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load((EXAMPLES / "prometheus-alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries(board: dict[str, Any]) -> Iterator[str]:
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["query"]["query"]


def test_the_dashboard_has_the_shape_grafana_loads() -> None:
    board = dashboard()
    assert board["uid"] and board["title"] and isinstance(board["schemaVersion"], int)
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert {"h", "w", "x", "y"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] != "row":
            assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
            assert all(t["refId"] for t in panel["targets"])
    names = {v["name"] for v in board["templating"]["list"]}
    assert {"datasource", "domain", "type"} <= names


def test_the_alert_rules_have_the_shape_prometheus_loads() -> None:
    found = rules()
    assert "WireframeJobsWaitingTooLong" in {rule["alert"] for rule in found}
    for rule in found:
        assert rule.keys() <= {"alert", "expr", "for", "labels", "annotations"}
        assert rule["labels"]["severity"] in {"page", "warning", "info"}
        assert rule["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", rule.get("for", "0s")), rule["alert"]


@pytest.mark.anyio
async def test_every_metric_and_label_they_use_is_exposed(anyio_backend: str) -> None:
    names = await exposed()
    queries = [*dashboard_queries(dashboard()), *(rule["expr"] for rule in rules())]
    used = set()
    for query in queries:
        for name, matchers in _SELECTOR.findall(query):
            assert name in names, f"{name} (in {query!r}) is not exposed"
            used.add(name)
            for label in _MATCHER.findall(matchers):
                assert label in names[name] | {"instance", "job"}, (label, name, query)
        for grouping in _BY.findall(query):
            labels = {label.strip() for label in grouping.split(",") if label.strip()}
            assert labels <= {lb for ls in names.values() for lb in ls} | {"instance"}, query
    # The metrics an on-call engineer needs are all on the dashboard or in an alert.
    assert {
        "wireframe_oldest_pending_age_seconds",
        "wireframe_job_queue_wait_seconds_bucket",
        "wireframe_job_duration_seconds_count",
        "wireframe_jobs",
        "wireframe_jobs_failed_total",
    } <= used
