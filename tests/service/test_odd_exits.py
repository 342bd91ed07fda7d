"""A task's odd exit (a cancellation the service did not cause, SystemExit, KeyboardInterrupt)
is that task's failure: the others stop gracefully, the hooks run, the run reports it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import pytest

from wireframe.service import (
    Service,
    ServiceError,
    ServicePhase,
    ShutdownHook,
    ShutdownHookFailedError,
    StopReasonKind,
    StopReceiver,
    Task,
    TaskFailedError,
    TaskKind,
    TaskState,
)

from service_support import run_bounded, run_capturing

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]
FOREIGN = "a cancellation the service did not request"


async def leak_a_cancellation() -> None:
    """Raise a cancellation outside the scope it belongs to (the analogue on every backend)."""
    leaked: BaseException | None = None
    with anyio.CancelScope() as scope:
        scope.cancel()
        try:
            await anyio.sleep(1)
        except anyio.get_cancelled_exc_class() as exc:
            leaked = exc
    assert leaked is not None
    raise leaked


async def await_a_cancelled_future() -> None:
    """Await a future somebody else cancelled (asyncio only)."""
    future = asyncio.get_running_loop().create_future()
    future.cancel()
    await future


async def cancel_my_own_asyncio_task() -> None:
    """A library cancelling the asyncio task it runs in, without any cancel scope (asyncio only)."""
    task = asyncio.current_task()
    assert task is not None
    task.cancel()
    await anyio.sleep(1)


ASYNCIO_ONLY = {await_a_cancelled_future, cancel_my_own_asyncio_task}


def graceful_service(
    make_service: MakeService, odd: Callable[[], object], log: list[str]
) -> Service:
    """A service whose task 'odd' ends oddly while 'patient' needs a moment to stop."""
    both_running = anyio.Event()
    running: set[str] = set()

    def started(id: str) -> None:
        running.add(id)
        if len(running) == 2:
            both_running.set()

    async def odd_task(stop: StopReceiver) -> None:
        started("odd")
        await both_running.wait()
        await odd()  # type: ignore[misc]

    async def patient(stop: StopReceiver) -> None:
        started("patient")
        await stop.wait()
        log.append(f"patient saw: {stop.reason}")
        await anyio.sleep(0.05)  # graceful work after stop: it is not cancelled
        log.append("patient stopped")

    def hook() -> None:
        log.append("hook ran")

    service = make_service(graceful_timeout=5.0)
    service.add_task(Task.from_fn("odd", odd_task))
    service.add_task(Task.from_fn("patient", patient, kind=TaskKind.UNCONSTRAINED))
    service.add_shutdown_hook(ShutdownHook("hook", hook))
    return service


def assert_reported_as_failure_of_odd(service: Service, errors: list[Exception]) -> BaseException:
    """Check the run's report and status; return the exception the task 'odd' ended with."""
    [err] = errors
    assert isinstance(err, ServiceError)
    assert err.failed_ids == ("odd",)
    [failure] = err.exceptions
    assert isinstance(failure, TaskFailedError)
    status = service.status()
    assert status.phase is ServicePhase.STOPPED
    assert status.stop_reason is not None
    assert status.stop_reason.kind is StopReasonKind.TASK_FAILED
    assert status.stop_reason.task_id == "odd"
    assert err.stop_reason == status.stop_reason
    assert status.task("odd").state is TaskState.FAILED
    assert status.task("patient").state is TaskState.FINISHED
    assert [h.state for h in status.hooks] == [TaskState.FINISHED]
    return failure.error


@pytest.mark.parametrize(
    "odd", [leak_a_cancellation, await_a_cancelled_future, cancel_my_own_asyncio_task]
)
async def test_a_cancellation_the_service_did_not_cause_is_the_tasks_failure(
    make_service: MakeService, anyio_backend: str, odd: Callable[[], object]
) -> None:
    if anyio_backend != "asyncio" and odd in ASYNCIO_ONLY:
        pytest.skip("asyncio only")
    log: list[str] = []
    service = graceful_service(make_service, odd, log)
    errors: list[Exception] = []
    await run_capturing(service, errors)
    error = assert_reported_as_failure_of_odd(service, errors)
    assert isinstance(error, anyio.get_cancelled_exc_class())
    assert f"task 'odd' failed: {type(error).__name__}, {FOREIGN}" in str(errors[0])
    assert "did not stop" not in str(errors[0])
    assert log == [
        f"patient saw: task 'odd' failed: {type(error).__name__}, {FOREIGN}",
        "patient stopped",
        "hook ran",
    ]
    assert service.status().task("odd").error == f"{type(error).__name__}, {FOREIGN}"


@pytest.mark.parametrize(
    ("exc", "code"),
    [(SystemExit(3), 3), (KeyboardInterrupt(), 130), (SystemExit(0), 1), (SystemExit("bye"), 1)],
)
async def test_system_exit_and_keyboard_interrupt_are_the_tasks_failure(
    make_service: MakeService, exc: BaseException, code: int
) -> None:
    async def odd() -> None:
        raise exc

    log: list[str] = []
    service = graceful_service(make_service, odd, log)
    errors: list[Exception] = []
    await run_capturing(service, errors)
    assert assert_reported_as_failure_of_odd(service, errors) is exc
    assert f"task 'odd' failed: {exc!r}" in str(errors[0])
    assert log == [f"patient saw: task 'odd' failed: {exc!r}", "patient stopped", "hook ran"]
    assert isinstance(errors[0], ServiceError) and errors[0].exit_code == code


async def test_a_precondition_raising_system_exit_runs_no_constrained_task(
    make_service: MakeService,
) -> None:
    ran: list[str] = []

    async def check(stop: StopReceiver) -> None:
        raise SystemExit(2)

    async def main(stop: StopReceiver) -> None:
        ran.append("main")

    service = make_service()
    service.add_task(Task.from_fn("check", check, kind=TaskKind.PRECONDITION))
    service.add_task(Task.from_fn("main", main))
    service.add_shutdown_hook(ShutdownHook("hook", lambda: ran.append("hook")))
    with pytest.raises(ServiceError) as info:
        await run_bounded(service)
    assert info.value.failed_ids == ("check",) and info.value.exit_code == 2
    assert ran == ["hook"]
    assert service.status().task("main").state is TaskState.SKIPPED


async def test_a_hook_ending_oddly_is_reported_and_the_next_hook_still_runs(
    make_service: MakeService,
) -> None:
    log: list[str] = []

    def exits() -> None:
        log.append("exits")
        raise SystemExit(5)

    async def leaks() -> None:
        log.append("leaks")
        await leak_a_cancellation()

    service = make_service().add_task(Task.from_fn("t", _noop, kind=TaskKind.ONESHOT))
    service.add_shutdown_hook(ShutdownHook("exits", exits))
    service.add_shutdown_hook(ShutdownHook("leaks", leaks))
    service.add_shutdown_hook(ShutdownHook("last", lambda: log.append("last")))
    with pytest.raises(ServiceError) as info:
        await run_bounded(service)
    assert log == ["exits", "leaks", "last"]
    assert info.value.failed_ids == ("exits", "leaks")
    assert all(isinstance(e, ShutdownHookFailedError) for e in info.value.exceptions)
    assert f"shutdown hook 'leaks' failed: {FOREIGN}" not in str(info.value)  # names the type
    assert FOREIGN in str(info.value) and info.value.exit_code == 5
    states = [h.state for h in service.status().hooks]
    assert states == [TaskState.FAILED, TaskState.FAILED, TaskState.FINISHED]
    assert service.status().phase is ServicePhase.STOPPED


async def test_cancelling_the_run_from_outside_still_cancels_it(make_service: MakeService) -> None:
    running = anyio.Event()
    seen: list[str] = []

    async def main(stop: StopReceiver) -> None:
        running.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            seen.append("cancelled")
            raise

    service = make_service().add_task(Task.from_fn("main", main))
    with anyio.CancelScope() as scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(service.run)
            await running.wait()
            scope.cancel()
    assert scope.cancelled_caught
    assert seen == ["cancelled"]
    assert service.status().task("main").state is TaskState.CANCELLED


async def _noop(stop: StopReceiver) -> None:
    pass
