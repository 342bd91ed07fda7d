"""Tasks that stop last (serving while the others drain) and prepare() before the barrier."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from wireframe.service import (
    OneshotTask,
    ServiceError,
    ShutdownHook,
    StopReceiver,
    Task,
    TaskFailedError,
    TaskKind,
    TaskNotStoppedError,
    TaskState,
    UnconstrainedTask,
)
from wireframe.service import _runtime as runtime_module
from wireframe.service.service import Service

from service_support import run_bounded, run_capturing

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]


class Attendant(UnconstrainedTask):
    """Stops last: notes when its stop arrives, and what the service looked like then."""

    id = "attendant"
    stops_last = True

    def __init__(self, service: Service, log: list[str]) -> None:
        self.service = service
        self.log = log
        self.forced: bool | None = None

    async def run(self, stop: StopReceiver) -> None:
        await stop.wait()
        self.forced = stop.forced
        others = [t for t in self.service.status().tasks if t.id != self.id]
        self.log.append("attendant stopped after " + ",".join(sorted(t.id for t in others)))
        assert all(t.state is TaskState.FINISHED or t.state is TaskState.CANCELLED for t in others)


async def test_a_task_that_stops_last_serves_until_the_others_have_ended(
    make_service: MakeService,
) -> None:
    service = make_service()
    log: list[str] = []
    draining = anyio.Event()
    drained = anyio.Event()

    async def worker(stop: StopReceiver) -> None:
        await stop.wait()
        draining.set()
        await drained.wait()  # a long drain: the attendant must not be told to stop yet
        log.append("worker drained")

    def hook() -> None:
        log.append("hook")

    attendant = Attendant(service, log)
    service.add_task(attendant).add_task(Task.from_fn("worker", worker))
    service.add_shutdown_hook(ShutdownHook("hook", hook))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        with anyio.fail_after(5):
            while not service.status().ready:
                await anyio.sleep(0.01)
        service.stop("deploy")
        status = service.status()
        assert not status.ready and status.phase.value == "stopping"  # at once
        await draining.wait()
        await anyio.wait_all_tasks_blocked()  # a wrongly early stop would have shown now
        assert log == []
        assert service.status().task("attendant").state is TaskState.STOPPING
        drained.set()
    assert log == ["worker drained", "attendant stopped after worker", "hook"]
    assert attendant.forced is False
    assert service.status().task("attendant").state is TaskState.FINISHED


async def test_after_a_forced_stop_a_task_that_stops_last_still_gets_its_stop(
    make_service: MakeService,
) -> None:
    service = make_service(graceful_timeout=30.0)
    log: list[str] = []
    stuck = anyio.Event()

    async def stubborn(stop: StopReceiver) -> None:
        stuck.set()
        try:
            await anyio.sleep_forever()
        finally:  # cleaning up takes a moment: the attendant must wait for it
            with anyio.CancelScope(shield=True):
                await anyio.sleep(0.05)

    attendant = Attendant(service, log)
    service.add_task(attendant).add_task(Task.from_fn("stubborn", stubborn))
    errors: list[Exception] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_capturing, service, errors)
        await stuck.wait()
        service.stop("now", force=True)
    (error,) = errors
    assert isinstance(error, ServiceError) and error.failed_ids == ("stubborn",)
    assert log == ["attendant stopped after stubborn"]
    assert attendant.forced is True
    assert service.status().task("attendant").state is TaskState.FINISHED


async def test_a_task_that_stops_last_and_ignores_its_stop_is_cancelled(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime_module, "LAST_STOP_GRACE", 0.1)
    service = make_service(graceful_timeout=0.1)

    class Deaf(UnconstrainedTask):
        id = "deaf"
        stops_last = True

        async def run(self, stop: StopReceiver) -> None:
            await anyio.sleep_forever()

    async def quick(stop: StopReceiver) -> None:
        await anyio.sleep(0.01)

    service.add_task(Deaf()).add_task(Task.from_fn("quick", quick))
    with pytest.raises(ServiceError) as info:
        await run_bounded(service)
    (failure,) = info.value.exceptions
    assert isinstance(failure, TaskNotStoppedError) and failure.id == "deaf"
    assert service.status().task("quick").state is TaskState.FINISHED


class Binder(UnconstrainedTask):
    """Its prepare() waits for `release` (or raises `error`); run() serves until stop."""

    id = "binder"

    def __init__(self, log: list[str], error: Exception | None = None) -> None:
        self.log = log
        self.error = error
        self.release = anyio.Event()
        self.preparing = anyio.Event()

    async def prepare(self) -> None:
        self.preparing.set()
        self.log.append("prepare")
        if self.error is not None:
            raise self.error
        await self.release.wait()
        self.log.append("prepared")

    async def run(self, stop: StopReceiver) -> None:
        self.log.append("run")
        await stop.wait()


async def test_constrained_tasks_wait_for_the_prepare_of_unconstrained_tasks(
    make_service: MakeService,
) -> None:
    service = make_service()
    log: list[str] = []
    binder = Binder(log)
    main_started = anyio.Event()

    async def main(stop: StopReceiver) -> None:
        log.append("main")
        main_started.set()
        await stop.wait()

    async def oneshot(stop: StopReceiver) -> None:
        log.append("unconstrained oneshot")

    service.add_task(binder).add_task(Task.from_fn("main", main))
    service.add_task(Task.from_fn("free", oneshot, kind=TaskKind.UNCONSTRAINED_ONESHOT))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await binder.preparing.wait()
        await anyio.wait_all_tasks_blocked()  # a wrongly started task would have run now
        status = service.status()
        assert status.task("main").state is TaskState.WAITING and not status.ready
        assert "main" not in log and "unconstrained oneshot" in log
        binder.release.set()
        await main_started.wait()
        assert service.status().ready
        service.stop()
    assert log.index("prepare") < log.index("prepared") < log.index("run")
    assert log.index("prepared") < log.index("main")


async def test_a_failing_prepare_stops_the_service_before_constrained_tasks_start(
    make_service: MakeService,
) -> None:
    service = make_service()
    log: list[str] = []

    class Main(OneshotTask):
        id = "main"

        async def run(self, stop: StopReceiver) -> None:
            log.append("main")

    service.add_task(Binder(log, OSError("port taken"))).add_task(Main())
    with pytest.raises(ServiceError) as info:
        await run_bounded(service)
    (failure,) = info.value.exceptions
    assert isinstance(failure, TaskFailedError) and failure.id == "binder"
    assert "port taken" in str(failure)
    assert log == ["prepare"]  # neither the binder's run nor the constrained task ran
    assert service.status().task("main").state is TaskState.SKIPPED
