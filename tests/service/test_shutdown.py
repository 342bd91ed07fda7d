"""Stop requests, the StopReceiver, shutdown hooks and the ServiceError report."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import anyio.to_thread
import pytest

from wireframe.service import (
    Service,
    ServiceError,
    ShutdownHook,
    ShutdownHookFailedError,
    ShutdownHookTimeoutError,
    StopReason,
    StopReasonKind,
    StopReceiver,
    Task,
    TaskKind,
    TaskNotStoppedError,
    TaskState,
)

from service_support import run_bounded, run_capturing

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]


async def test_stop_receiver_before_and_after_stop(make_service: MakeService) -> None:
    service = make_service()
    seen: dict[str, object] = {}
    ready = anyio.Event()

    async def watcher(stop: StopReceiver) -> None:
        seen["stopped_before"] = stop.stopped
        seen["reason_before"] = stop.reason
        seen["wait_short"] = await stop.wait(timeout=0.01)  # times out: False
        ready.set()
        seen["wait"] = await stop.wait()
        seen["wait_after"] = await stop.wait(timeout=0)
        seen["stopped_after"] = stop.stopped
        seen["reason"] = stop.reason

    service.add_task(Task.from_fn("watcher", watcher))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await ready.wait()
        service.stop("maintenance window")
    assert seen == {
        "stopped_before": False,
        "reason_before": None,
        "wait_short": False,
        "wait": True,
        "wait_after": True,
        "stopped_after": True,
        "reason": StopReason(StopReasonKind.REQUESTED, message="maintenance window"),
    }
    assert str(seen["reason"]) == "maintenance window"
    assert str(StopReason(StopReasonKind.REQUESTED)) == "Service.stop() was called"
    assert str(StopReason(StopReasonKind.SIGNAL, signal="SIGTERM")) == "received SIGTERM"


async def test_every_task_gets_the_same_stop(make_service: MakeService) -> None:
    service = make_service()
    n = 200
    running = 0
    all_running = anyio.Event()
    woke: list[str] = []

    def task(i: int) -> Task:
        async def run(stop: StopReceiver) -> None:
            nonlocal running
            running += 1
            if running == n:
                all_running.set()
            await stop.wait()
            woke.append(f"t{i}")

        return Task.from_fn(f"t{i}", run)

    for i in range(n):
        service.add_task(task(i))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await all_running.wait()
        service.stop()
    assert sorted(woke) == sorted(f"t{i}" for i in range(n))


async def test_first_stop_reason_wins(make_service: MakeService) -> None:
    service = make_service()

    async def main(stop: StopReceiver) -> None:
        service.stop("first")
        service.stop("second")
        await stop.wait()

    service.add_task(Task.from_fn("main", main))
    await run_bounded(service)
    assert service.status().stop_reason == StopReason(StopReasonKind.REQUESTED, message="first")


async def test_stop_before_run_starts_no_task_but_runs_hooks(make_service: MakeService) -> None:
    service = make_service()
    ran: list[str] = []

    async def main(stop: StopReceiver) -> None:
        ran.append("main")

    async def hook() -> None:
        ran.append("hook")

    service.add_task(Task.from_fn("main", main, kind=TaskKind.UNCONSTRAINED))
    service.add_shutdown_hook(ShutdownHook("hook", hook))
    service.stop("never mind")
    assert service.status().stop_reason is not None
    await run_bounded(service)
    assert ran == ["hook"]
    assert service.status().task("main").state is TaskState.SKIPPED


async def test_stop_from_another_thread(make_service: MakeService) -> None:
    service = make_service()
    threads: list[int] = []

    async def main(stop: StopReceiver) -> None:
        def in_thread() -> None:
            threads.append(threading.get_ident())
            service.stop("from a thread")

        await anyio.to_thread.run_sync(in_thread)
        await stop.wait()

    service.add_task(Task.from_fn("main", main))
    await run_bounded(service)
    assert threads and threads[0] != threading.get_ident()
    assert str(service.status().stop_reason) == "from a thread"


async def test_run_inside_an_existing_task_group(make_service: MakeService) -> None:
    service = make_service()
    started = anyio.Event()
    other_done = anyio.Event()

    async def main(stop: StopReceiver) -> None:
        started.set()
        await stop.wait()

    async def other_work() -> None:
        await started.wait()
        other_done.set()
        service.stop()

    service.add_task(Task.from_fn("main", main))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        tg.start_soon(other_work)
    assert other_done.is_set()


# ----- shutdown hooks -----


async def test_hooks_run_after_the_tasks_in_the_order_added(make_service: MakeService) -> None:
    service = make_service()
    log: list[str] = []

    async def main(stop: StopReceiver) -> None:
        await stop.wait()
        await anyio.sleep(0.01)  # a task taking a moment to stop still finishes before hooks
        log.append("main stopped")

    def hook(name: str) -> Callable[[], object]:
        async def run() -> None:
            log.append(name)

        return run

    def sync_hook() -> None:
        log.append("sync")

    service.add_task(Task.from_fn("main", main))
    service.add_task(Task.from_fn("quit", lambda stop: _stop_now(service), kind=TaskKind.ONESHOT))
    for name in ("first", "second"):
        service.add_shutdown_hook(ShutdownHook(name, hook(name)))  # type: ignore[arg-type]
    service.add_shutdown_hook(ShutdownHook("sync", sync_hook))
    await run_bounded(service)
    assert log == ["main stopped", "first", "second", "sync"]
    hooks = service.status().hooks
    assert [(h.id, h.state) for h in hooks] == [
        ("first", TaskState.FINISHED),
        ("second", TaskState.FINISHED),
        ("sync", TaskState.FINISHED),
    ]


async def _stop_now(service: Service) -> None:
    service.stop()


async def test_failing_and_hanging_hooks_are_reported_and_the_next_still_runs(
    make_service: MakeService,
) -> None:
    service = make_service()
    log: list[str] = []

    async def failing() -> None:
        log.append("failing")
        raise OSError("disk full")

    async def hanging() -> None:
        log.append("hanging")
        await anyio.sleep_forever()

    async def last() -> None:
        log.append("last")

    service.add_task(Task.from_fn("quit", lambda stop: _stop_now(service)))
    service.add_shutdown_hook(ShutdownHook("failing", failing))
    service.add_shutdown_hook(ShutdownHook("hanging", hanging, timeout=0.1))
    service.add_shutdown_hook(ShutdownHook("last", last))
    with pytest.raises(ServiceError) as info:
        await run_bounded(service)
    assert log == ["failing", "hanging", "last"]
    assert info.value.failed_ids == ("failing", "hanging")
    failed, timed_out = info.value.exceptions
    assert isinstance(failed, ShutdownHookFailedError)
    assert isinstance(failed.error, OSError)
    assert isinstance(timed_out, ShutdownHookTimeoutError)
    assert not timed_out.forced
    assert "shutdown hook 'hanging' did not finish within 0.1 s" in str(info.value)
    states = [h.state for h in service.status().hooks]
    assert states == [TaskState.FAILED, TaskState.CANCELLED, TaskState.FINISHED]


async def test_service_error_names_every_failed_task_and_hook(make_service: MakeService) -> None:
    service = make_service(graceful_timeout=0.2)
    both_running = anyio.Event()
    running = 0

    async def fails(stop: StopReceiver) -> None:
        await both_running.wait()
        raise KeyError("missing")

    async def stubborn(stop: StopReceiver) -> None:
        nonlocal running
        running += 1
        both_running.set()
        await anyio.sleep_forever()

    async def bad_hook() -> None:
        raise RuntimeError("flush failed")

    service.add_task(Task.from_fn("fails", fails))
    service.add_task(Task.from_fn("stubborn", stubborn, kind=TaskKind.UNCONSTRAINED))
    service.add_task(Task.from_fn("fine", lambda stop: stop.wait()))  # type: ignore[arg-type]
    service.add_shutdown_hook(ShutdownHook("bad-hook", bad_hook))
    errors: list[Exception] = []
    await run_capturing(service, errors)
    [err] = errors
    assert isinstance(err, ServiceError)
    assert err.failed_ids == ("fails", "stubborn", "bad-hook")
    for id in err.failed_ids:
        assert repr(id) in str(err)
    assert isinstance(err.exceptions[1], TaskNotStoppedError)
    assert service.status().task("fine").state is TaskState.FINISHED
