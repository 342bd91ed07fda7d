"""stop_delay: a stopping service is not ready at once but serves on before its tasks stop."""

from __future__ import annotations

import http.client
import json
from collections.abc import Awaitable, Callable

import anyio
import anyio.to_thread
import pytest

from wireframe.service import (
    HealthServer,
    Service,
    ServiceConfigError,
    ServiceError,
    ServicePhase,
    ShutdownHook,
    StopReceiver,
    Task,
    TaskNotStoppedError,
    TaskState,
)

from service_support import run_capturing

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "5", True, None])
def test_stop_delay_is_validated(bad: object) -> None:
    with pytest.raises(ServiceConfigError, match=r"stop_delay must be .*got"):
        Service("svc", stop_delay=bad)  # type: ignore[arg-type]


def test_stop_delay_defaults_to_zero() -> None:
    assert Service("svc").stop_delay == 0.0
    assert Service("svc", stop_delay=5).stop_delay == 5.0


def _fetch(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


async def get(port: int, path: str) -> tuple[int, bytes]:
    """One request on loopback (blocking, so in a thread)."""
    return await anyio.to_thread.run_sync(_fetch, port, path)


async def eventually(check: Callable[[], Awaitable[object]], what: str) -> None:
    """Poll ``check`` until it returns something truthy (fail after 5 s)."""
    with anyio.fail_after(5.0):
        while not await check():
            await anyio.sleep(0.01)


async def _ready(port: int) -> bool:
    return (await get(port, "/ready"))[0] == 200


async def test_during_the_delay_ready_is_503_while_tasks_still_run_and_force_skips_it(
    make_service: MakeService,
) -> None:
    service = make_service(stop_delay=3600.0)  # only a forced stop ends this run in time
    health = HealthServer(service, port=0)
    service.add_task(health)
    seen: list[str] = []

    async def worker(stop: StopReceiver) -> None:
        await stop.wait()
        seen.append("stop")
        await anyio.sleep_forever()  # a forced stop cancels it

    service.add_task(Task.from_fn("worker", worker))
    errors: list[Exception] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_capturing, service, errors)
        port = await health.started()
        await eventually(lambda: _ready(port), "ready")
        service.stop("rollout")
        status = service.status()
        assert (status.phase, status.ready, status.in_stop_delay) == (
            ServicePhase.STOPPING,
            False,
            True,
        )
        assert str(status.stop_reason) == "rollout"
        assert status.task("worker").state is TaskState.RUNNING  # not yet told to stop
        code, body = await get(port, "/ready")
        assert code == 503
        answer = json.loads(body)
        assert answer["in_stop_delay"] is True and answer["stop_reason"] == "rollout"
        assert (await get(port, "/health"))[0] == 200
        assert seen == []  # the tasks have not been told to stop
        service.stop(force=True)  # a second signal: the delay ends at once
    assert seen == ["stop"]
    assert not service.status().in_stop_delay
    [error] = errors
    assert isinstance(error, ServiceError)
    assert [type(f) for f in error.exceptions] == [TaskNotStoppedError]


async def test_the_delay_comes_before_the_tasks_stop_then_they_drain_and_hooks_run(
    make_service: MakeService,
) -> None:
    service = make_service(stop_delay=0.2, graceful_timeout=2.0)
    events: list[str] = []
    started = anyio.Event()

    async def worker(stop: StopReceiver) -> None:
        started.set()
        await stop.wait()
        events.append("stop reached the task")
        assert not service.status().in_stop_delay
        await anyio.sleep(0)  # the drain
        events.append("drained")

    service.add_task(Task.from_fn("worker", worker))
    service.add_shutdown_hook(ShutdownHook("hook", lambda: events.append("hook")))
    errors: list[Exception] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_capturing, service, errors)
        await started.wait()
        await eventually(_async(lambda: service.status().ready), "ready")
        asked = anyio.current_time()
        service.stop()
        assert service.status().in_stop_delay
        events.append("stop requested")
        await eventually(_async(lambda: events[-1] != "stop requested"), "the task stops")
        waited = anyio.current_time() - asked
    assert errors == []
    assert waited >= 0.2  # the tasks heard of the stop only once the delay was over
    assert events == ["stop requested", "stop reached the task", "drained", "hook"]
    assert service.status().phase is ServicePhase.STOPPED


async def test_a_stop_before_the_service_is_ready_has_no_delay(make_service: MakeService) -> None:
    service = make_service(stop_delay=3600.0)
    service.add_task(Task.from_fn("worker", _until_stop))
    service.stop("before start")
    errors: list[Exception] = []
    await run_capturing(service, errors)  # its time limit would fail a 3600 s delay
    assert errors == []


async def _until_stop(stop: StopReceiver) -> None:
    await stop.wait()


def _async(check: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    async def run() -> object:
        return check()

    return run
