"""HealthServer over real sockets: liveness, readiness around the barrier, Prometheus metrics."""

from __future__ import annotations

import http.client
import json
import re
import socket
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import pytest

from wireframe import (
    Domain,
    HealthServer,
    JobContext,
    Precondition,
    Retry,
    Scheduler,
    Service,
    ServiceError,
    StopReceiver,
    Task,
    TaskKind,
    scheduler_metrics,
)
from wireframe.service import health as health_module
from wireframe.service.metrics import (
    Histogram,
    MetricFamily,
    MetricsRegistry,
    counter,
    gauge,
    render,
)
from wireframe.store import ClaimRequest, MemoryStore

LIMIT = 10.0

Response = tuple[int, dict[str, str], bytes]


def fetch(port: int, path: str, method: str = "GET") -> Response:
    """One request with the standard library's HTTP client (blocking: run it in a thread)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read()
    finally:
        conn.close()


async def get(port: int, path: str, method: str = "GET") -> Response:
    return await anyio.to_thread.run_sync(fetch, port, path, method)


async def eventually(check: Callable[[], Any], what: str) -> Any:
    """Poll an async check until it returns something truthy (fail after LIMIT seconds)."""
    with anyio.fail_after(LIMIT):
        while True:
            value = await check()
            if value:
                return value
            await anyio.sleep(0.02)


Metrics = dict[tuple[str, frozenset[tuple[str, str]]], float]
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text: str) -> tuple[Metrics, dict[str, str]]:
    """Parse the Prometheus text format: samples by (name, labels), and each family's TYPE."""
    samples: Metrics = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            types[name] = kind
            continue
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        pairs = frozenset(_PAIR.findall(labels or ""))
        samples[(name, pairs)] = float(value)
    return samples, types


def value(samples: Metrics, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def make_service(name: str = "svc") -> Service:
    return Service(name, handle_signals=False, graceful_timeout=5.0)


@pytest.mark.anyio
async def test_ready_is_503_until_the_barrier_is_released_then_200() -> None:
    service = make_service()
    release = anyio.Event()
    health = HealthServer(service, port=0)

    class WaitForDatabase(Precondition):
        id = "database"

        async def run(self, stop: StopReceiver) -> None:
            await release.wait()

    async def work(stop: StopReceiver) -> None:
        await stop.wait()

    service.add_task(health).add_task(WaitForDatabase()).add_task(Task.from_fn("work", work))
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            port = await health.started()
            assert health.url == f"http://127.0.0.1:{port}"

            status, headers, body = await get(port, "/health")
            assert status == 200 and json.loads(body)["status"] == "ok"
            status, headers, body = await get(port, "/ready")
            assert status == 503
            assert headers["content-type"] == "application/json"
            ready = json.loads(body)
            assert ready["ready"] is False and ready["phase"] == "starting"
            assert set(ready["waiting"]) == {"work"}
            assert ready["preconditions"] == ["database"]  # what the service waits for

            release.set()

            async def is_ready() -> bool:
                return (await get(port, "/ready"))[0] == 200

            await eventually(is_ready, "/ready to answer 200")
            body = (await get(port, "/ready"))[2]
            assert json.loads(body) == {
                "ready": True,
                "service": "svc",
                "phase": "ready",
                "preconditions": [],
                "waiting": [],
                "stop_reason": None,
                "in_stop_delay": False,
            }
            service.stop("test over")
    assert service.status().task("health").state.value == "finished"


@pytest.mark.anyio
async def test_unknown_paths_methods_head_and_keep_alive() -> None:
    service = make_service()
    health = HealthServer(service, port=0)
    service.add_task(health)
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            port = await health.started()
            status, _, body = await get(port, "/nope")
            assert status == 404 and "/nope" in json.loads(body)["error"]
            status, _, body = await get(port, "/health", "POST")
            assert status == 405
            status, headers, body = await get(port, "/health", "HEAD")
            assert status == 200 and body == b"" and int(headers["content-length"]) > 0

            def two_requests_one_connection() -> list[int]:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                try:
                    codes = []
                    for path in ("/health", "/metrics"):
                        conn.request("GET", path)
                        response = conn.getresponse()
                        response.read()
                        codes.append(response.status)
                    return codes
                finally:
                    conn.close()

            assert await anyio.to_thread.run_sync(two_requests_one_connection) == [200, 200]

            def garbage() -> bytes:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                    sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
                    return sock.recv(4096)

            reply = await anyio.to_thread.run_sync(garbage)
            assert reply.startswith(b"HTTP/1.1 400")
            assert (await get(port, "/health"))[0] == 200  # still serving
            service.stop()


@pytest.mark.anyio
async def test_metrics_report_tasks_jobs_outcomes_durations_and_reclaims() -> None:
    media = Domain("media")

    @media.job(retry=Retry.fixed(attempts=3, delay=0))
    async def resize(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        if job.get("fail"):
            raise ValueError("broken image")
        return {"ok": True}

    store = MemoryStore()
    scheduler = Scheduler(store, domains=[media], max_concurrency=2, poll_interval=0.05)
    service = make_service("media-svc")
    health = HealthServer(service, port=0, collectors=[scheduler_metrics(scheduler)])

    idle_stop = anyio.Event()

    async def idle(stop: StopReceiver) -> None:
        await idle_stop.wait()

    service.add_task(health).add_task(scheduler)
    service.add_task(Task.from_fn("idle", idle, kind=TaskKind.ONESHOT))
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            # A job claimed by a worker that dies: its lease (50 ms) expires, ours reclaims it.
            await scheduler.open()
            orphan = (await scheduler.submit({"n": 0}, type="media::resize")).id
            taken = await store.claim(ClaimRequest("dead-worker", 1, 0.05, ("media",)))
            assert [j.id for j in taken] == [orphan]

            tg.start_soon(service.run)
            port = await health.started()
            ok = [(await scheduler.submit({"n": i}, type="media::resize")).id for i in (1, 2)]
            bad = (await scheduler.submit({"fail": True}, type="media::resize")).id
            for job_id in [*ok, orphan]:
                await scheduler.result(job_id, timeout=LIMIT)

            async def failed_for_good() -> bool:
                job = await scheduler.get(bad)
                return job is not None and job.state.value == "failed"

            await eventually(failed_for_good, "the failing job to fail")

            async def scrape() -> tuple[Metrics, dict[str, str]] | None:
                status, headers, body = await get(port, "/metrics")
                assert status == 200
                assert headers["content-type"].startswith("text/plain; version=0.0.4")
                samples, types = parse_metrics(body.decode())
                labels = {"domain": "media", "type": "media::resize"}
                done = value(samples, "wireframe_jobs_completed_total", **labels)
                failed = value(samples, "wireframe_jobs_failed_total", **labels, will_retry="false")
                return (samples, types) if done == 3 and failed == 1 else None

            samples, types = await eventually(scrape, "the counters to catch up")
            t = "media::resize"
            assert value(samples, "wireframe_jobs", domain="media", type=t, state="completed") == 3
            assert value(samples, "wireframe_jobs", domain="media", type=t, state="failed") == 1
            series, ran = (
                {"domain": "media", "type": t},
                {"domain": "media", "type": t, "outcome": "completed"},
            )
            assert value(samples, "wireframe_jobs_failed_total", **series, will_retry="true") == 2
            assert value(samples, "wireframe_lease_reclaims_total", **series) == 1
            assert value(samples, "wireframe_job_duration_seconds_count", **ran) == 3
            assert value(samples, "wireframe_job_duration_seconds_bucket", **ran, le="+Inf") == 3
            buckets = sorted(
                (float(dict(labels)["le"]), v)
                for (name, labels), v in samples.items()
                if name == "wireframe_job_duration_seconds_bucket"
                and dict(labels)["outcome"] == "completed"
            )
            assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
            assert value(samples, "wireframe_job_duration_seconds_sum", **ran) >= 0
            assert types["wireframe_job_duration_seconds"] == "histogram"
            assert types["wireframe_jobs_completed_total"] == "counter"
            assert types["wireframe_jobs"] == "gauge"
            assert value(samples, "wireframe_service_ready", service="media-svc") == 1
            for task, kind in (("health", "unconstrained"), ("scheduler", "task")):
                labels = {"task": task, "kind": kind, "state": "running"}
                assert value(samples, "wireframe_task_state", **labels) == 1
            assert value(samples, "wireframe_tasks", kind="oneshot", state="running") == 1
            idle_stop.set()
            service.stop()


def test_registry_rendering_escapes_and_rejects_bad_names() -> None:
    histogram = Histogram("h_seconds", "A histogram.", ("type",), buckets=(0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 5.0):
        histogram.observe(v, "a")
    text = render(
        [
            gauge("g", "Help with \\ and\nnewline.", [({"path": 'a"b\\c\nd'}, 1.5)]),
            counter("c_total", "A counter.", [({}, 3)]),
            histogram.family(),
        ]
    )
    assert "# HELP g Help with \\\\ and\\nnewline." in text
    assert 'g{path="a\\"b\\\\c\\nd"} 1.5' in text
    assert "c_total 3\n" in text
    samples, _ = parse_metrics(text)
    assert value(samples, "h_seconds_bucket", type="a", le="0.1") == 2
    assert value(samples, "h_seconds_bucket", type="a", le="1") == 3
    assert value(samples, "h_seconds_bucket", type="a", le="+Inf") == 4
    assert value(samples, "h_seconds_sum", type="a") == pytest.approx(5.65)
    with pytest.raises(ValueError, match="'bad-name'"):
        gauge("bad-name", "x")
    with pytest.raises(ValueError, match="expected labels"):
        histogram.observe(1.0)
    with pytest.raises(ValueError, match="port must be"):
        HealthServer(make_service(), port=70000)


@pytest.mark.anyio
async def test_a_duplicated_family_and_a_failing_collector_answer_500() -> None:
    registry = MetricsRegistry([lambda: [gauge("x", "x")], lambda: [gauge("x", "x")]])
    with pytest.raises(ValueError, match="'x' is produced twice"):
        await registry.render()
    service = make_service()

    def broken() -> list[Any]:
        raise RuntimeError("collector down")

    health = HealthServer(service, port=0, collectors=[broken])
    service.add_task(health)
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            port = await health.started()
            status, _, body = await get(port, "/metrics")
            assert status == 500 and "collector down" in json.loads(body)["error"]
            assert (await get(port, "/health"))[0] == 200
            service.stop()


@pytest.mark.anyio
async def test_a_port_in_use_fails_the_task_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = make_service()
        health = HealthServer(service, port=port)
        service.add_task(health)
        with anyio.fail_after(LIMIT), pytest.raises(Exception) as info:
            await service.run()
        assert f"cannot listen on 127.0.0.1:{port}" in str(info.value.exceptions[0])
        with pytest.raises(RuntimeError, match="did not start"):
            await health.started()


def refused(port: int) -> bool:
    """True if nothing listens on the port any more."""
    try:
        fetch(port, "/health")
    except ConnectionError:  # refused; or reset, if it waited in the backlog as the server closed
        return True
    return False


@pytest.mark.anyio
async def test_the_server_answers_while_the_service_drains() -> None:
    service = make_service()
    health = HealthServer(service, port=0)
    draining = anyio.Event()
    drained = anyio.Event()

    async def drains(stop: StopReceiver) -> None:
        await stop.wait()
        draining.set()
        await drained.wait()  # e.g. jobs finishing after SIGTERM

    service.add_task(health).add_task(Task.from_fn("drains", drains))
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            port = await health.started()

            async def is_ready() -> bool:
                return (await get(port, "/ready"))[0] == 200

            await eventually(is_ready, "/ready to answer 200")
            service.stop("deploy")
            status, _, body = await get(port, "/ready")  # 503 from the moment stop begins
            assert status == 503
            ready = json.loads(body)
            assert ready["phase"] == "stopping" and ready["stop_reason"] == "deploy"
            await draining.wait()
            for _ in range(3):  # and for as long as the drain lasts
                assert (await get(port, "/ready"))[0] == 503
                status, _, body = await get(port, "/health")
                assert status == 200 and json.loads(body)["phase"] == "stopping"
                status, _, body = await get(port, "/metrics")
                samples, _ = parse_metrics(body.decode())
                assert status == 200
                assert value(samples, "wireframe_service_ready", service="svc") == 0
            drained.set()
    assert await anyio.to_thread.run_sync(refused, port)  # closed once the service has stopped
    assert service.status().task("health").state.value == "finished"


@pytest.mark.anyio
async def test_a_taken_port_fails_the_service_before_any_job_is_claimed() -> None:
    media = Domain("media")

    @media.job()
    async def resize(job: dict[str, Any], ctx: JobContext) -> None:
        pass

    scheduler = Scheduler(MemoryStore(), domains=[media], poll_interval=0.05)
    job_id = (await scheduler.submit({}, type="media::resize")).id
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = make_service()
        service.add_task(scheduler).add_task(HealthServer(service, port=port))
        with anyio.fail_after(LIMIT), pytest.raises(ServiceError) as info:
            await service.run()
    (failure,) = info.value.exceptions  # one error, naming the port
    assert failure.id == "health"
    assert f"health server cannot listen on 127.0.0.1:{port}: " in str(failure)
    assert service.status().task("scheduler").state.value == "skipped"
    job = await scheduler.get(job_id)
    assert job is not None and job.state.value == "pending" and job.attempt == 0
    await scheduler.close()


@pytest.mark.anyio
async def test_at_the_close_a_request_under_way_is_answered_and_idle_connections_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(health_module, "CLOSE_GRACE", 6.0)
    service = make_service()
    scraping, answer = anyio.Event(), anyio.Event()

    async def slow_collector() -> list[MetricFamily]:
        scraping.set()
        await answer.wait()
        return [gauge("slow_metric", "Takes a while to collect.", [({}, 1)])]

    health = HealthServer(service, port=0, collectors=[slow_collector])
    service.add_task(health)
    scraped: list[Response] = []

    async def scrape() -> None:
        scraped.append(await get(port, "/metrics"))

    def keep_alive() -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/health")
        response = conn.getresponse()
        assert response.status == 200 and response.read()
        return conn  # open, between requests

    idle: http.client.HTTPConnection | None = None
    try:
        with anyio.fail_after(LIMIT):
            async with anyio.create_task_group() as tg:
                tg.start_soon(service.run)
                port = await health.started()
                idle = await anyio.to_thread.run_sync(keep_alive)
                tg.start_soon(scrape)
                await scraping.wait()
                service.stop()
                await eventually(lambda: anyio.to_thread.run_sync(refused, port), "the close")
                answer.set()
                started = anyio.current_time()
            assert anyio.current_time() - started < 3.0  # not held up by the idle connection
        assert idle.sock is not None and idle.sock.recv(1) == b""  # the server closed it
    finally:
        if idle is not None:
            idle.close()
    ((status, _, body),) = scraped
    assert status == 200 and b"slow_metric 1" in body
