"""`/metrics` as Prometheus reads it: a real HealthServer scraped over HTTP, parsed with the
Prometheus client's own text parser, and checked against the store.

What an on-call engineer relies on: every state series of every job type is there (0 where
empty, never "No data"); the oldest ready job's wait per domain and the queue wait per type are
what the store says; failed, timed-out and cancelled attempts are timed too; and a job type no
worker knows (a typo from the CLI) is counted under `(other)` instead of minting new series.
"""

from __future__ import annotations

import http.client
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import pytest
from prometheus_client.parser import text_string_to_metric_families

from wireframe import (
    Domain,
    HealthServer,
    JobContext,
    Retry,
    Scheduler,
    Service,
    scheduler_metrics,
)
from wireframe.store import JobState, NewJob, Store
from wireframe.testing import running

pytestmark = pytest.mark.anyio

LIMIT = 10.0
OTHER = "(other)"
KNOWN = {"media::resize": "media", "media::slow": "media", "mail::send": "mail"}
WAIT = 0.3
"""How long the held-back mail job waits before it may start (seconds)."""

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class Metrics:
    """One scrape, parsed by `prometheus_client`: samples by name and labels, families' types."""

    def __init__(self, text: str) -> None:
        self.samples: Samples = {}
        self.types: dict[str, str] = {}
        for family in text_string_to_metric_families(text):
            self.types[family.name] = family.type
            for s in family.samples:
                self.samples[(s.name, frozenset(s.labels.items()))] = s.value

    def __call__(self, name: str, **labels: str) -> float:
        """The value of one sample; a missing one fails the test (absent is not 0)."""
        key = (name, frozenset(labels.items()))
        assert key in self.samples, f"no sample {name}{labels}"
        return self.samples[key]

    def label_values(self, label: str) -> set[str]:
        return {v for (_, labels), _ in self.samples.items() for k, v in labels if k == label}


def fetch(port: int) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        assert response.status == 200
        return response.read().decode()
    finally:
        conn.close()


async def until(check: Callable[[], Any], what: str) -> Any:
    """Poll an async check until it returns something truthy (fail after LIMIT seconds)."""
    with anyio.fail_after(LIMIT):
        while not (value := await check()):
            await anyio.sleep(0.02)
        return value


def make_scheduler(path: Path, gate: anyio.Event) -> Scheduler:
    media, mail = Domain("media"), Domain("mail", max_concurrency=1)

    @media.job(retry=Retry.fixed(attempts=2, delay=0))
    async def resize(job: dict[str, Any], ctx: JobContext) -> None:
        if job.get("fail"):
            raise ValueError("broken image")

    @media.job(timeout=0.1)
    async def slow(job: dict[str, Any], ctx: JobContext) -> None:
        await anyio.sleep(LIMIT)

    @mail.job
    async def send(job: dict[str, Any], ctx: JobContext) -> None:
        if job.get("hold"):
            await gate.wait()

    return Scheduler(
        f"sqlite:///{path}", domains=[media, mail], poll_interval=0.05, cancel_grace=0.05
    )


@asynccontextmanager
async def serving(scheduler: Scheduler) -> AsyncIterator[Callable[[], Any]]:
    """The scheduler and a HealthServer with its metrics, running; yields `scrape()`."""
    service = Service("metrics-svc", handle_signals=False, graceful_timeout=5.0)
    health = HealthServer(service, port=0, collectors=[scheduler_metrics(scheduler)])
    service.add_task(health).add_task(scheduler)
    async with anyio.create_task_group() as tg:
        tg.start_soon(service.run)
        port = await health.started()

        async def scrape() -> Metrics:
            return Metrics(await anyio.to_thread.run_sync(fetch, port))

        try:
            yield scrape
        finally:
            service.stop()


async def state(store: Store, job_id: int) -> JobState:
    record = await store.get(job_id)
    assert record is not None
    return record.state


def series_of(domain: str, job_type: str) -> tuple[str, str]:
    """The labels the test expects for a job: unknown types and domains as (other)."""
    if job_type in KNOWN:
        return domain, job_type
    return (domain if domain in KNOWN.values() else OTHER), OTHER


def expected_gauges(counts: dict[tuple[str, str, JobState], int]) -> dict[tuple[str, ...], int]:
    """What `wireframe_jobs` must say: every series in every state, the store's counts added."""
    series = [(d, t) for t, d in KNOWN.items()]
    series += [("media", OTHER), ("mail", OTHER), (OTHER, OTHER)]
    table = {(d, t, str(s)): 0 for d, t in series for s in JobState}
    for (domain, job_type, s), n in counts.items():
        table[(*series_of(domain, job_type), str(s))] += n
    return table


async def test_metrics_match_the_store_time_every_outcome_and_bound_unknown_types(
    tmp_path: Path,
) -> None:
    gate = anyio.Event()
    scheduler = make_scheduler(tmp_path / "jobs.db", gate)
    store = scheduler.store
    with anyio.fail_after(LIMIT):
        async with serving(scheduler) as scrape:
            ok = [(await scheduler.submit({}, type="media::resize")).id for _ in range(2)]
            bad = (await scheduler.submit({"fail": True}, type="media::resize")).id
            slow = (await scheduler.submit({}, type="media::slow")).id
            # What `wireframe submit` would store for two typos: a type in a known domain
            # (its worker fails it: no handler) and a domain no worker runs (it waits).
            await store.submit(
                [
                    NewJob(type="media::resiez", domain="media", payload="{}"),
                    NewJob(type="medai::resize", domain="medai", payload="{}"),
                ]
            )
            held = (await scheduler.submit({"hold": True}, type="mail::send")).id
            await until(lambda: _is(store, held, JobState.RUNNING), "the held job to run")
            queued = (await scheduler.submit({}, type="mail::send")).id
            for job_id in ok:
                await scheduler.result(job_id, timeout=LIMIT)
            for job_id in (bad, slow):
                await until(lambda j=job_id: _is(store, j, JobState.FAILED), "a job to fail")
            await until(lambda: _failed_typo(store), "the typo in a known domain to fail")
            await until(lambda: _waited(store, "mail", WAIT), "the queued job to wait")
            assert await state(store, queued) is JobState.PENDING

            before = await store.oldest_pending()
            metrics = await until(lambda: _counted(scrape, failed=4), "the failures counted")
            after = await store.oldest_pending()
            counts = await store.counts()

            # Every state of every series, equal to the store's counts.
            for (domain, job_type, s), n in expected_gauges(counts).items():
                assert metrics("wireframe_jobs", domain=domain, type=job_type, state=s) == n
            assert metrics("wireframe_jobs", domain="media", type=OTHER, state="failed") == 1
            assert metrics("wireframe_jobs", domain=OTHER, type=OTHER, state="pending") == 1
            assert metrics("wireframe_jobs", domain="mail", type="mail::send", state="paused") == 0
            # The oldest wait per domain, as the store measures it at the time of the scrape.
            for label, domain in (("mail", "mail"), (OTHER, "medai")):
                age = metrics("wireframe_oldest_pending_age_seconds", domain=label)
                assert before[domain] <= age <= after[domain]
            assert metrics("wireframe_oldest_pending_age_seconds", domain="media") == 0
            # Failed attempts are timed, by outcome; counters carry the domain.
            resize = {"domain": "media", "type": "media::resize"}
            failed = {**resize, "outcome": "failed"}
            assert metrics("wireframe_job_duration_seconds_count", **failed) == 2
            assert (
                metrics("wireframe_job_duration_seconds_count", **resize, outcome="completed") == 2
            )
            timeout = {"domain": "media", "type": "media::slow", "outcome": "timeout"}
            assert metrics("wireframe_job_duration_seconds_count", **timeout) == 1
            assert metrics("wireframe_job_duration_seconds_sum", **timeout) >= 0.1
            assert metrics("wireframe_jobs_failed_total", **resize, will_retry="true") == 1
            assert metrics("wireframe_jobs_failed_total", **resize, will_retry="false") == 1
            typo = {"domain": "media", "type": OTHER}
            assert metrics("wireframe_jobs_failed_total", **typo, will_retry="false") == 1
            assert metrics("wireframe_jobs_started_total", **resize) == 4
            assert metrics("wireframe_jobs_cancelled_total", domain="mail", type="mail::send") == 0

            # Cancel the running job: timed as cancelled; the queued one starts after WAIT.
            ready = {j: r.ready_at for j in (held, queued) if (r := await store.get(j))}
            await scheduler.cancel(held)
            await scheduler.result(queued, timeout=LIMIT)
            metrics = await until(lambda: _counted(scrape, completed=3), "the mail job counted")
            send = {"domain": "mail", "type": "mail::send"}
            assert metrics("wireframe_job_duration_seconds_count", **send, outcome="cancelled") == 1
            assert metrics("wireframe_jobs_cancelled_total", **send) >= 1
            started = {j: r.started_at for j in (held, queued) if (r := await store.get(j))}
            waits = [started[j] - ready[j] for j in (held, queued)]
            assert metrics("wireframe_job_queue_wait_seconds_count", **send) == 2
            total = metrics("wireframe_job_queue_wait_seconds_sum", **send)
            assert total >= WAIT and abs(total - sum(waits)) < 0.2
            assert metrics("wireframe_job_queue_wait_seconds_bucket", **send, le="0.25") <= 1

            # No label value was minted from a typo.
            assert metrics.label_values("type") <= {*KNOWN, OTHER}
            assert metrics.label_values("domain") <= {"media", "mail", OTHER}
            assert metrics.types["wireframe_job_queue_wait_seconds"] == "histogram"
            assert metrics.types["wireframe_oldest_pending_age_seconds"] == "gauge"


async def _is(store: Store, job_id: int, wanted: JobState) -> bool:
    return await state(store, job_id) is wanted


async def _failed_typo(store: Store) -> bool:
    return (await store.counts()).get(("media", "media::resiez", JobState.FAILED), 0) == 1


async def _waited(store: Store, domain: str, seconds: float) -> bool:
    return (await store.oldest_pending()).get(domain, 0.0) >= seconds


async def _counted(
    scrape: Callable[[], Any], *, failed: int = 0, completed: int = 0
) -> Metrics | None:
    """A scrape once this process's counters have caught up with the events."""
    metrics: Metrics = await scrape()
    total_failed = sum(
        v for (name, _), v in metrics.samples.items() if name == "wireframe_jobs_failed_total"
    )
    total_completed = sum(
        v for (name, _), v in metrics.samples.items() if name == "wireframe_jobs_completed_total"
    )
    return metrics if total_failed >= failed and total_completed >= completed else None


async def test_a_scrape_after_the_scheduler_stopped_does_not_reopen_its_store(
    tmp_path: Path,
) -> None:
    d = Domain("d")

    @d.job
    async def noop(job: dict[str, int], ctx: JobContext) -> None:
        return None

    s = Scheduler(tmp_path / "jobs.db", domains=[d])
    collect = scheduler_metrics(s)
    async with running(s):
        await s.result((await s.submit({}, type="d::noop")).id, timeout=10)
    assert s.closed
    names = {family.name for family in await collect()}
    assert s.closed  # still closed: the health server may answer after the scheduler ended
    assert "wireframe_jobs" not in names
    assert "wireframe_jobs_completed_total" in names
