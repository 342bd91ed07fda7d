"""service.status(): phases, readiness and per-task states with timings."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from wireframe.service import (
    Service,
    ServicePhase,
    StopReceiver,
    Task,
    TaskKind,
    TaskState,
)

from service_support import run_bounded

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]


async def test_phases_readiness_and_task_states(make_service: MakeService) -> None:
    service = make_service()
    release = anyio.Event()
    pre_running = anyio.Event()
    main_running = anyio.Event()
    main_stopping = anyio.Event()
    let_main_finish = anyio.Event()

    async def precondition(stop: StopReceiver) -> None:
        pre_running.set()
        await release.wait()

    async def main(stop: StopReceiver) -> None:
        main_running.set()
        await stop.wait()
        main_stopping.set()
        await let_main_finish.wait()

    async def health(stop: StopReceiver) -> None:
        await stop.wait()

    service.add_task(Task.from_fn("pre", precondition, kind=TaskKind.PRECONDITION))
    service.add_task(Task.from_fn("main", main))
    service.add_task(Task.from_fn("health", health, kind=TaskKind.UNCONSTRAINED))

    status = service.status()
    assert status.phase is ServicePhase.CREATED and not status.ready
    assert {t.state for t in status.tasks} == {TaskState.PENDING}

    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await pre_running.wait()
        await anyio.wait_all_tasks_blocked()
        status = service.status()
        assert status.phase is ServicePhase.STARTING and not status.ready
        assert status.task("main").state is TaskState.WAITING
        assert status.task("pre").state is TaskState.RUNNING
        assert status.task("health").state is TaskState.RUNNING
        assert status.task("main").started_at is None

        release.set()
        await main_running.wait()
        status = service.status()
        assert status.phase is ServicePhase.READY and status.ready
        assert status.task("pre").state is TaskState.FINISHED
        pre = status.task("pre")
        assert pre.started_at is not None and pre.finished_at is not None
        assert pre.duration is not None and pre.duration >= 0
        assert status.task("main").state is TaskState.RUNNING
        assert status.count(TaskState.RUNNING) == 2

        service.stop("bye")
        await main_stopping.wait()
        status = service.status()
        assert status.phase is ServicePhase.STOPPING and not status.ready
        assert status.task("main").state is TaskState.STOPPING
        assert str(status.stop_reason) == "bye"
        let_main_finish.set()

    status = service.status()
    assert status.phase is ServicePhase.STOPPED and not status.ready
    assert {t.state for t in status.tasks} == {TaskState.FINISHED}
    with pytest.raises(KeyError):
        status.task("nope")


async def test_ready_needs_every_constrained_task_started(make_service: MakeService) -> None:
    service = make_service()
    phases: list[ServicePhase] = []
    all_started = anyio.Event()

    async def record(stop: StopReceiver) -> None:
        phases.append(service.status().phase)
        if len(phases) == 3:
            all_started.set()
        await stop.wait()

    async def quit(stop: StopReceiver) -> None:
        await all_started.wait()
        assert service.status().ready
        service.stop()

    for i in range(3):
        service.add_task(Task.from_fn(f"t{i}", record))
    service.add_task(Task.from_fn("quit", quit, kind=TaskKind.UNCONSTRAINED_ONESHOT))
    await run_bounded(service)
    # ready flips exactly when the last constrained task starts, before its body runs
    assert phases == [ServicePhase.STARTING, ServicePhase.STARTING, ServicePhase.READY]


async def test_status_is_a_frozen_value(make_service: MakeService) -> None:
    service = make_service().add_task(Task.from_fn("t", _noop))
    status = service.status()
    with pytest.raises(AttributeError):
        status.phase = ServicePhase.READY  # type: ignore[misc]


async def _noop(stop: StopReceiver) -> None:
    pass
