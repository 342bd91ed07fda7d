"""StopReceiver.deadline and .forced: when tasks still running get cancelled, and whether the
stop was forced; a bounded shielded cleanup at that moment still finishes before run returns."""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import pytest

from wireframe.service import (
    Service,
    ServiceError,
    ShutdownHook,
    ShutdownHookTimeoutError,
    StopReason,
    StopReasonKind,
    StopReceiver,
    Task,
    TaskNotStoppedError,
    TaskState,
)

from service_support import LIMIT, run_capturing

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]
EARLY = 0.01  # seconds a timer may fire before its deadline (the event loop's clock resolution)
LATE = 1.0  # seconds of slack for a loaded machine; the graceful timeouts here are 30 s


class Stubborn:
    """A task that ignores stop and records what its StopReceiver says when it is cancelled."""

    def __init__(self, cleanup: float = 0.0) -> None:
        self.running = anyio.Event()
        self.stopped = anyio.Event()
        self.cleanup = cleanup
        self.seen: dict[str, object] = {}
        self.log: list[str] = []

    async def run(self, stop: StopReceiver) -> None:
        self.seen["before"] = (stop.deadline, stop.forced)
        self.running.set()
        await stop.wait()
        self.seen["deadline at stop"] = stop.deadline
        self.stopped.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.seen["cancelled at"] = anyio.current_time()
            self.seen["deadline"] = stop.deadline
            self.seen["forced"] = stop.forced
            if self.cleanup:
                with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                    await anyio.sleep(self.cleanup)
                    self.log.append("cleaned up")
            raise

    def task(self) -> Task:
        return Task.from_fn("stubborn", self.run)


def between(low: float, value: object, high: float) -> bool:
    assert isinstance(value, float)
    return low <= value <= high


async def test_the_deadline_is_the_stop_time_plus_the_graceful_timeout(
    make_service: MakeService,
) -> None:
    service = make_service(graceful_timeout=0.3)
    stubborn = Stubborn()
    service.add_task(stubborn.task())
    errors: list[Exception] = []
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_capturing, service, errors)
            await stubborn.running.wait()
            t0 = anyio.current_time()
            service.stop()
            t1 = anyio.current_time()
    assert stubborn.seen["before"] == (None, False)
    deadline = stubborn.seen["deadline at stop"]
    assert between(t0 + 0.3, deadline, t1 + 0.3)
    assert stubborn.seen["deadline"] == deadline and stubborn.seen["forced"] is False
    assert isinstance(deadline, float)
    assert between(deadline - EARLY, stubborn.seen["cancelled at"], deadline + LATE)
    [err] = errors
    assert isinstance(err, ServiceError)
    [failure] = err.exceptions
    assert isinstance(failure, TaskNotStoppedError) and not failure.forced


@pytest.mark.parametrize("graceful_first", [True, False])
async def test_a_forced_stop_sets_forced_and_moves_the_deadline_to_its_time(
    make_service: MakeService, graceful_first: bool
) -> None:
    service = make_service(graceful_timeout=30.0)
    stubborn = Stubborn()
    service.add_task(stubborn.task())
    errors: list[Exception] = []
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_capturing, service, errors)
            await stubborn.running.wait()
            if graceful_first:
                service.stop("graceful")
                await stubborn.stopped.wait()
            t0 = anyio.current_time()
            service.stop("now", force=True)
            t1 = anyio.current_time()
    deadline = stubborn.seen["deadline"]
    assert stubborn.seen["forced"] is True
    assert between(t0, deadline, t1)
    assert between(t0, stubborn.seen["cancelled at"], t1 + LATE)
    if graceful_first:
        assert isinstance(stubborn.seen["deadline at stop"], float)
        assert stubborn.seen["deadline at stop"] > t0 + 29  # first: the graceful deadline
    [err] = errors
    assert isinstance(err, ServiceError)
    [failure] = err.exceptions
    assert isinstance(failure, TaskNotStoppedError) and failure.forced
    reason = service.status().stop_reason
    assert reason == StopReason(
        StopReasonKind.REQUESTED, message="graceful" if graceful_first else "now"
    )


async def test_a_forced_stop_before_run_runs_nothing(make_service: MakeService) -> None:
    ran: list[str] = []

    async def main(stop: StopReceiver) -> None:
        ran.append("main")

    service = make_service().add_task(Task.from_fn("main", main))
    service.add_shutdown_hook(ShutdownHook("hook", lambda: ran.append("hook")))
    service.stop("never mind", force=True)
    errors: list[Exception] = []
    await run_capturing(service, errors)
    assert ran == []
    [err] = errors
    assert isinstance(err, ServiceError)
    [failure] = err.exceptions
    assert isinstance(failure, ShutdownHookTimeoutError) and failure.forced
    assert service.status().task("main").state is TaskState.SKIPPED


@pytest.mark.parametrize("forced", [False, True])
async def test_a_bounded_shielded_cleanup_at_the_deadline_finishes_before_run_returns(
    make_service: MakeService, forced: bool
) -> None:
    service = make_service(graceful_timeout=0.1)
    stubborn = Stubborn(cleanup=0.2)
    service.add_task(stubborn.task())
    service.add_shutdown_hook(ShutdownHook("hook", lambda: stubborn.log.append("hook")))
    errors: list[Exception] = []
    with anyio.fail_after(LIMIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_capturing, service, errors)
            await stubborn.running.wait()
            service.stop("enough", force=forced)
    stubborn.log.append("run returned")
    assert stubborn.seen["forced"] is forced
    deadline = stubborn.seen["deadline"]
    assert isinstance(deadline, float)
    assert between(deadline - EARLY, stubborn.seen["cancelled at"], deadline + LATE)
    # A forced stop skips the hooks not yet run; a graceful one runs them after the cleanup.
    hooks = [] if forced else ["hook"]
    assert stubborn.log == ["cleaned up", *hooks, "run returned"]
    [err] = errors
    assert isinstance(err, ServiceError)
    assert isinstance(err.exceptions[0], TaskNotStoppedError)
    assert service.status().task("stubborn").state is TaskState.CANCELLED


async def test_a_receiver_stopped_outside_a_service_never_cancels() -> None:
    stop = StopReceiver()
    assert stop.deadline is None and not stop.forced
    stop._request(StopReason(StopReasonKind.REQUESTED))  # as wireframe.testing.running does
    assert stop.deadline == math.inf and not stop.forced
