"""The lifecycle rules of a running service: barrier, stop, graceful timeout, errors."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from wireframe.service import (
    Service,
    ServiceError,
    StopReason,
    StopReasonKind,
    StopReceiver,
    Task,
    TaskFailedError,
    TaskKind,
    TaskNotStoppedError,
    TaskState,
)

from service_support import run_bounded, run_capturing

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]


def fn_task(id: str, fn: Callable[[StopReceiver], object], kind: TaskKind) -> Task:
    return Task.from_fn(id, fn, kind=kind)  # type: ignore[arg-type]


async def wait_for_stop(stop: StopReceiver) -> None:
    await stop.wait()


# ----- the precondition barrier -----


async def test_constrained_tasks_start_only_after_every_precondition(
    make_service: MakeService,
) -> None:
    service = make_service()
    log: list[str] = []
    release = [anyio.Event(), anyio.Event()]
    both_waiting = anyio.Event()
    main_started = anyio.Event()

    def precondition(i: int) -> Callable[[StopReceiver], object]:
        async def check(stop: StopReceiver) -> None:
            if all(t.state is TaskState.RUNNING for t in service.status().tasks[:2]):
                both_waiting.set()
            await release[i].wait()
            log.append(f"pre{i}")

        return check

    async def main(stop: StopReceiver) -> None:
        log.append("main")
        main_started.set()
        await stop.wait()

    async def oneshot(stop: StopReceiver) -> None:
        log.append("oneshot")

    service.add_task(fn_task("pre0", precondition(0), TaskKind.PRECONDITION))
    service.add_task(fn_task("pre1", precondition(1), TaskKind.PRECONDITION))
    service.add_task(fn_task("main", main, TaskKind.TASK))
    service.add_task(fn_task("once", oneshot, TaskKind.ONESHOT))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await both_waiting.wait()
        assert service.status().task("main").state is TaskState.WAITING
        assert service.status().task("once").state is TaskState.WAITING
        release[0].set()
        await anyio.wait_all_tasks_blocked()
        assert log == ["pre0"]  # one precondition is not enough
        release[1].set()
        await main_started.wait()
        service.stop()
    assert log[:2] == ["pre0", "pre1"]
    assert sorted(log[2:]) == ["main", "oneshot"]


async def test_unconstrained_tasks_start_at_once(make_service: MakeService) -> None:
    service = make_service()
    release = anyio.Event()
    started: list[str] = []
    both = anyio.Event()

    async def blocked(stop: StopReceiver) -> None:
        await release.wait()

    def unconstrained(id: str) -> Callable[[StopReceiver], object]:
        async def run(stop: StopReceiver) -> None:
            started.append(id)
            if len(started) == 2:
                both.set()
            await stop.wait()

        return run

    service.add_task(fn_task("pre", blocked, TaskKind.PRECONDITION))
    service.add_task(fn_task("health", unconstrained("health"), TaskKind.UNCONSTRAINED))
    service.add_task(fn_task("mig", unconstrained("mig"), TaskKind.UNCONSTRAINED_ONESHOT))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await both.wait()  # started although the precondition has not returned
        assert service.status().task("pre").state is TaskState.RUNNING
        release.set()
        service.stop()


async def test_failing_precondition_stops_the_service_and_no_constrained_task_runs(
    make_service: MakeService,
) -> None:
    service = make_service()
    ran: list[str] = []

    async def failing(stop: StopReceiver) -> None:
        raise RuntimeError("database missing")

    async def constrained(stop: StopReceiver) -> None:
        ran.append("constrained")

    async def unconstrained(stop: StopReceiver) -> None:
        await stop.wait()
        ran.append("unconstrained stopped")

    service.add_task(fn_task("db", failing, TaskKind.PRECONDITION))
    service.add_task(fn_task("main", constrained, TaskKind.TASK))
    service.add_task(fn_task("job", constrained, TaskKind.ONESHOT))
    service.add_task(fn_task("health", unconstrained, TaskKind.UNCONSTRAINED))
    with pytest.raises(ServiceError) as info:
        await run_bounded(service)
    assert ran == ["unconstrained stopped"]
    assert info.value.failed_ids == ("db",)
    failure = info.value.exceptions[0]
    assert isinstance(failure, TaskFailedError)
    assert failure.kind is TaskKind.PRECONDITION
    assert isinstance(failure.error, RuntimeError)
    assert "precondition 'db' failed" in str(info.value)
    reason = service.status().stop_reason
    assert reason is not None and reason.kind is StopReasonKind.TASK_FAILED
    assert reason.task_id == "db"
    states = {t.id: t.state for t in service.status().tasks}
    assert states["main"] is TaskState.SKIPPED and states["job"] is TaskState.SKIPPED


async def test_constrained_task_waiting_at_stop_never_runs_and_is_no_error(
    make_service: MakeService,
) -> None:
    service = make_service()
    ran: list[str] = []
    waiting = anyio.Event()

    async def precondition(stop: StopReceiver) -> None:
        waiting.set()
        await stop.wait()

    async def main(stop: StopReceiver) -> None:
        ran.append("main")

    service.add_task(fn_task("pre", precondition, TaskKind.PRECONDITION))
    service.add_task(fn_task("main", main, TaskKind.TASK))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await waiting.wait()
        service.stop("operator")
    assert ran == []
    assert service.status().task("main").state is TaskState.SKIPPED
    assert service.status().task("main").started_at is None


# ----- what stops the service -----


async def test_task_returning_stops_the_service_cleanly(make_service: MakeService) -> None:
    service = make_service()
    stopped: list[str] = []

    async def quits(stop: StopReceiver) -> None:
        pass

    async def waits(stop: StopReceiver) -> None:
        await stop.wait()
        stopped.append("waits")

    service.add_task(fn_task("quits", quits, TaskKind.TASK))
    service.add_task(fn_task("waits", waits, TaskKind.UNCONSTRAINED))
    assert await run_bounded(service) is None
    assert stopped == ["waits"]
    reason = service.status().stop_reason
    assert reason == StopReason(StopReasonKind.TASK_EXITED, task_id="quits")
    assert str(reason) == "task 'quits' exited"


@pytest.mark.parametrize("kind", [TaskKind.TASK, TaskKind.UNCONSTRAINED, TaskKind.ONESHOT])
async def test_task_raising_stops_the_service_with_a_service_error(
    make_service: MakeService, kind: TaskKind
) -> None:
    service = make_service()
    boom = ValueError("boom")

    async def fails(stop: StopReceiver) -> None:
        raise boom

    service.add_task(fn_task("fails", fails, kind))
    service.add_task(fn_task("waits", wait_for_stop, TaskKind.TASK))
    with pytest.raises(ServiceError) as info:
        await run_bounded(service)
    err = info.value
    assert isinstance(err, ExceptionGroup)
    assert err.failed_ids == ("fails",)
    assert err.exceptions[0].__cause__ is boom
    assert "'fails' failed: ValueError('boom')" in str(err)
    assert err.stop_reason is not None and err.stop_reason.kind is StopReasonKind.TASK_FAILED
    assert "boom" in str(err.stop_reason)
    matched, rest = err.split(TaskFailedError)
    assert isinstance(matched, ServiceError) and rest is None
    assert service.status().task("waits").state is TaskState.FINISHED


async def test_oneshot_finishing_does_not_stop_a_long_running_task(
    make_service: MakeService,
) -> None:
    service = make_service()
    oneshot_done = anyio.Event()

    async def oneshot(stop: StopReceiver) -> None:
        oneshot_done.set()

    service.add_task(fn_task("once", oneshot, TaskKind.ONESHOT))
    service.add_task(fn_task("uonce", wait_for_stop, TaskKind.UNCONSTRAINED_ONESHOT))
    service.add_task(fn_task("main", wait_for_stop, TaskKind.TASK))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await oneshot_done.wait()
        await anyio.wait_all_tasks_blocked()
        status = service.status()
        assert status.stop_reason is None
        assert status.task("once").state is TaskState.FINISHED
        assert status.task("main").state is TaskState.RUNNING
        service.stop()
    assert service.status().task("main").state is TaskState.FINISHED


async def test_service_of_oneshots_and_preconditions_exits_when_all_are_done(
    make_service: MakeService,
) -> None:
    service = make_service()
    migrated = anyio.Event()
    done: list[str] = []

    async def migrate(stop: StopReceiver) -> None:
        migrated.set()
        done.append("migrate")

    async def check(stop: StopReceiver) -> None:
        await migrated.wait()
        done.append("check")

    async def job(stop: StopReceiver) -> None:
        done.append("job")

    service.add_task(fn_task("check", check, TaskKind.PRECONDITION))
    service.add_task(fn_task("job", job, TaskKind.ONESHOT))
    service.add_task(fn_task("migrate", migrate, TaskKind.UNCONSTRAINED_ONESHOT))
    assert await run_bounded(service) is None
    assert done == ["migrate", "check", "job"]
    status = service.status()
    assert status.stop_reason == StopReason(StopReasonKind.ALL_DONE)
    assert all(t.state is TaskState.FINISHED for t in status.tasks)


# ----- graceful timeout -----


async def test_graceful_timeout_cancels_the_stubborn_task_only(make_service: MakeService) -> None:
    service = make_service(graceful_timeout=0.2)
    cancelled = anyio.Event()
    started = anyio.Event()

    async def stubborn(stop: StopReceiver) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled.set()

    async def slow_but_in_time(stop: StopReceiver) -> None:
        await stop.wait()
        await anyio.sleep(0.05)  # takes a little while to stop, within the timeout

    service.add_task(fn_task("stubborn", stubborn, TaskKind.TASK))
    service.add_task(fn_task("slow", slow_but_in_time, TaskKind.UNCONSTRAINED))
    errors: list[Exception] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_capturing, service, errors)
        await started.wait()
        service.stop()
    [err] = errors
    assert isinstance(err, ServiceError)
    assert err.failed_ids == ("stubborn",)
    failure = err.exceptions[0]
    assert isinstance(failure, TaskNotStoppedError) and not failure.forced
    assert "task 'stubborn' did not stop within 0.2 s" in str(err)
    assert cancelled.is_set()
    status = service.status()
    assert status.task("stubborn").state is TaskState.CANCELLED
    assert status.task("slow").state is TaskState.FINISHED
