"""Restart policies: a supervised task starts again after a backoff, the service stays up."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

import anyio
import pytest

from wireframe.service import (
    Backoff,
    OneshotTask,
    Precondition,
    Restart,
    RestartOn,
    Service,
    ServiceConfigError,
    ServiceContext,
    ServiceError,
    StopReasonKind,
    StopReceiver,
    Task,
    TaskFailedError,
    TaskKind,
    TaskState,
    UnconstrainedTask,
    WiringLayer,
)
from wireframe.service._supervise import Supervisor
from wireframe.service.log import JsonFormatter
from wireframe.service.metrics import render, service_collector

from service_support import run_bounded, run_capturing

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]

QUICK = Backoff(initial=0.001, max=0.01, jitter=0.0)
"""A backoff short enough that restarts do not slow the tests."""


class Flaky(Task):
    """Fails its first ``failures`` runs, then waits for stop; counts its runs."""

    id = "flaky"

    def __init__(self, failures: int, *, restart: Restart | None = None) -> None:
        super().__init__(restart=restart)
        self.failures = failures
        self.runs = 0
        self.steady = anyio.Event()  # set once a run got past the failures

    async def run(self, stop: StopReceiver) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise ValueError(f"boom {self.runs}")
        self.steady.set()
        await stop.wait()


async def _until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (they block on events, not sleeps)."""
    while not condition():
        await anyio.wait_all_tasks_blocked()
        if not condition():
            await anyio.sleep(0.001)  # a backoff wait is the only thing left to pass


# ----- the policy values -----


def test_backoff_doubles_from_half_a_second_up_to_thirty() -> None:
    backoff = Backoff(jitter=0.0)
    assert [backoff.delay(n) for n in range(8)] == [0.5, 1, 2, 4, 8, 16, 30, 30]
    assert backoff.delay(10_000) == 30.0  # no overflow far along the sequence


def test_jitter_only_shortens_a_delay() -> None:
    backoff = Backoff(initial=1.0, jitter=0.25)
    assert backoff.delay(0, rand=0.0) == 1.0
    assert backoff.delay(0, rand=1.0) == 0.75
    assert backoff.delay(6, rand=1.0) == 30.0 * 0.75
    assert all(0.75 <= backoff.delay(0) <= 1.0 for _ in range(200))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"initial": -1}, r"Backoff initial must be a finite number >= 0, got -1"),
        ({"factor": 0.5}, r"Backoff factor must be a finite number >= 1, got 0.5"),
        ({"jitter": 2}, r"Backoff jitter must be a finite number between 0 and 1, got 2"),
        ({"max": float("inf")}, r"Backoff max must be a finite number >= 0, got inf"),
        ({"initial": 5, "max": 1}, r"Backoff max \(1 s\) must be >= initial \(5 s\)"),
        ({"reset_after": "1"}, r"Backoff reset_after must be a number, got '1'"),
    ],
)
def test_bad_backoff_is_refused_naming_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ServiceConfigError, match=message):
        Backoff(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Restart.on_failure(max_restarts=-1), r"max_restarts must be an int >= 0, got -1"),
        (lambda: Restart.on_failure(max_restarts=2.5), r"max_restarts must be an int >= 0"),
        (lambda: Restart.on_failure(within=0), r"within must be > 0 seconds, got 0"),
        (lambda: Restart.always(within=float("nan")), r"within must be >= 0 seconds, got nan"),
        (lambda: Restart.on_failure(backoff="fast"), r"backoff must be a Backoff or a number"),
        (lambda: Restart.on_failure(backoff=-2), r"Restart backoff must be >= 0 seconds"),
    ],
)
def test_bad_restart_is_refused_naming_the_field(make: Callable[[], Restart], message: str) -> None:
    with pytest.raises(ServiceConfigError, match=message):
        make()


def test_a_number_as_backoff_is_the_initial_delay() -> None:
    policy = Restart.on_failure(2.0)
    assert policy.backoff.initial == 2.0
    assert policy.backoff.max == 30.0
    assert Restart.on_failure(45).backoff.max == 45.0
    assert policy.on is RestartOn.FAILURE
    assert Restart.always().on is RestartOn.ALWAYS
    assert Restart.on_failure().describe() == (
        "on failure, at most 5 restarts in 60 s, backoff 0.5..30 s"
    )


def test_supervisor_counts_restarts_within_the_window() -> None:
    sup = Supervisor(Restart.on_failure(Backoff(jitter=0.0), max_restarts=3, within=10.0))
    assert [sup.next_delay(0.1, t) for t in (0.0, 1.0, 2.0)] == [0.5, 1.0, 2.0]
    assert sup.next_delay(0.1, 3.0) is None  # a fourth restart within 10 s: escalate
    assert sup.exhausted
    fresh = Supervisor(Restart.on_failure(Backoff(jitter=0.0), max_restarts=3, within=10.0))
    for t in (0.0, 1.0, 2.0):
        fresh.next_delay(0.1, t)
    assert fresh.next_delay(0.1, 10.5) == 4.0  # the first two fell out of the window
    assert fresh.restarts == 4


def test_a_long_run_resets_the_backoff() -> None:
    sup = Supervisor(Restart.on_failure(Backoff(jitter=0.0, reset_after=30.0), max_restarts=None))
    assert [sup.next_delay(1.0, float(t)) for t in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert sup.next_delay(30.0, 100.0) == 0.5
    assert sup.next_delay(1.0, 101.0) == 1.0


# ----- where a policy is given -----


def test_a_policy_is_taken_from_every_place_a_task_is_added(make_service: MakeService) -> None:
    policy = Restart.on_failure(QUICK)

    class WithClassPolicy(Task):
        id = "class-attr"
        restart = policy

        async def run(self, stop: StopReceiver) -> None:
            await stop.wait()

    service = make_service()
    service.add_task(WithClassPolicy())
    service.add_task(Flaky(0, restart=policy))
    service.add_task(Task.from_fn("from-fn", _wait, restart=policy))
    service.add_task(Task.from_fn("by-add", _wait), restart=policy)
    service.task("decorated", restart=policy)(_wait)
    service.add_task(Task.from_fn("plain", _wait))
    supervised = {t.id: t.supervised for t in service.status().tasks}
    assert supervised == {
        "class-attr": True,
        "flaky": True,
        "from-fn": True,
        "by-add": True,
        "decorated": True,
        "plain": False,
    }


async def _wait(stop: StopReceiver) -> None:
    await stop.wait()


def test_a_bad_policy_is_refused_when_the_task_is_added(make_service: MakeService) -> None:
    service = make_service()
    with pytest.raises(ServiceConfigError, match=r"task 'x': restart must be a Restart.*got 3"):
        service.add_task(Task.from_fn("x", _wait), restart=3)  # type: ignore[arg-type]
    with pytest.raises(ServiceConfigError, match=r"task 'p': a precondition must pass once"):
        service.add_task(Task.from_fn("p", _wait, TaskKind.PRECONDITION), restart=Restart.always())
    assert service.status().tasks == ()


# ----- supervised runs -----


async def test_a_failing_task_is_restarted_and_the_service_stays_up(
    make_service: MakeService,
) -> None:
    service = make_service()
    flaky = Flaky(2, restart=Restart.on_failure(QUICK))
    service.add_task(flaky)
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await flaky.steady.wait()
        status = service.status().task("flaky")
        assert status.state is TaskState.RUNNING
        assert status.restarts == 2
        assert status.last_error == "ValueError('boom 2')"
        assert status.error is None
        assert service.status().ready
        service.stop()
    final = service.status().task("flaky")  # the run ended cleanly: no ServiceError
    assert final.state is TaskState.FINISHED
    assert final.restarts == 2
    assert flaky.runs == 3


async def test_past_the_intensity_limit_the_failure_stops_the_service(
    make_service: MakeService,
) -> None:
    service = make_service()
    flaky = Flaky(100, restart=Restart.on_failure(QUICK, max_restarts=3, within=60.0))
    service.add_task(flaky)
    errors: list[Exception] = []
    await run_capturing(service, errors)
    assert flaky.runs == 4  # the first run and 3 restarts
    [error] = errors
    assert isinstance(error, ServiceError)
    [failure] = error.exceptions
    assert isinstance(failure, TaskFailedError)
    assert "ValueError('boom 4') (gave up: 3 restarts within 60 s)" in str(failure)
    assert error.stop_reason is not None
    assert error.stop_reason.kind is StopReasonKind.TASK_FAILED
    status = service.status().task("flaky")
    assert status.state is TaskState.FAILED
    assert status.restarts == 3


async def test_zero_restarts_allowed_fails_as_without_a_policy(
    make_service: MakeService,
) -> None:
    service = make_service()
    flaky = Flaky(1, restart=Restart.on_failure(QUICK, max_restarts=0))
    service.add_task(flaky)
    errors: list[Exception] = []
    await run_capturing(service, errors)
    assert flaky.runs == 1
    assert isinstance(errors[0], ServiceError)


async def test_a_stop_during_the_backoff_ends_it_at_once(make_service: MakeService) -> None:
    service = make_service()
    flaky = Flaky(1, restart=Restart.on_failure(Backoff(initial=3600, max=3600, jitter=0)))
    service.add_task(flaky)
    service.add_task(Task.from_fn("other", _wait))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)  # fails the test if it waits out the hour
        await _until(lambda: service.status().task("flaky").state is TaskState.RESTARTING)
        status = service.status().task("flaky")
        assert status.restart_at is not None and status.started_at is not None
        assert status.restart_at > status.started_at + 3000
        service.stop()
    final = service.status().task("flaky")
    assert final.state is TaskState.SKIPPED
    assert final.error is None
    assert final.last_error == "ValueError('boom 1')"
    assert flaky.runs == 1


async def test_a_forced_stop_during_the_backoff_ends_it_at_once(
    make_service: MakeService,
) -> None:
    service = make_service()
    flaky = Flaky(1, restart=Restart.on_failure(Backoff(initial=3600, max=3600, jitter=0)))
    service.add_task(flaky)
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await _until(lambda: service.status().task("flaky").state is TaskState.RESTARTING)
        service.stop(force=True)
    assert service.status().task("flaky").state is TaskState.SKIPPED


async def test_a_failure_after_stop_is_not_restarted(make_service: MakeService) -> None:
    class FailsOnStop(Task):
        id = "fails-on-stop"
        restart = Restart.on_failure(QUICK)
        runs = 0

        async def run(self, stop: StopReceiver) -> None:
            FailsOnStop.runs += 1
            await stop.wait()
            raise RuntimeError("could not flush")

    service = make_service()
    service.add_task(FailsOnStop())
    errors: list[Exception] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_capturing, service, errors)
        await anyio.wait_all_tasks_blocked()
        service.stop()
    assert FailsOnStop.runs == 1
    assert isinstance(errors[0], ServiceError)
    assert "could not flush" in str(errors[0])
    assert "gave up" not in str(errors[0])


async def test_on_failure_does_not_restart_a_task_that_returns(make_service: MakeService) -> None:
    service = make_service()
    runs: list[int] = []

    async def returns(stop: StopReceiver) -> None:
        runs.append(1)

    service.add_task(Task.from_fn("returns", returns), restart=Restart.on_failure(QUICK))
    service.add_task(Task.from_fn("other", _wait))
    await run_bounded(service)
    assert runs == [1]
    status = service.status()
    assert status.stop_reason is not None
    assert status.stop_reason.kind is StopReasonKind.TASK_EXITED


async def test_always_restarts_a_task_that_returns(make_service: MakeService) -> None:
    service = make_service()
    runs: list[int] = []
    third = anyio.Event()

    async def returns_twice(stop: StopReceiver) -> None:
        runs.append(1)
        if len(runs) == 3:
            third.set()
            await stop.wait()

    service.add_task(Task.from_fn("returns", returns_twice), restart=Restart.always(QUICK))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await third.wait()
        status = service.status().task("returns")
        assert (status.state, status.restarts, status.last_error) == (TaskState.RUNNING, 2, None)
        service.stop()
    assert service.status().task("returns").state is TaskState.FINISHED


async def test_a_supervised_oneshot_is_retried_until_it_returns(
    make_service: MakeService,
) -> None:
    class Migrate(OneshotTask):
        id = "migrate"
        restart = Restart.on_failure(QUICK)
        runs = 0

        async def run(self, stop: StopReceiver) -> None:
            Migrate.runs += 1
            if Migrate.runs < 3:
                raise ConnectionError("database not up yet")

    service = make_service()
    service.add_task(Migrate())
    await run_bounded(service)  # every task done: the service stops on its own, cleanly
    status = service.status().task("migrate")
    assert (status.state, status.restarts) == (TaskState.FINISHED, 2)
    assert status.last_error == "ConnectionError('database not up yet')"


async def test_a_supervised_precondition_holds_the_barrier_until_it_passes(
    make_service: MakeService,
) -> None:
    order: list[str] = []

    class DatabaseUp(Precondition):
        id = "database-up"
        restart = Restart.on_failure(QUICK, max_restarts=None)

        async def run(self, stop: StopReceiver) -> None:
            order.append("check")
            if order.count("check") < 4:
                raise ConnectionError("refused")

    async def app(stop: StopReceiver) -> None:
        order.append("app")

    service = make_service()
    service.add_task(DatabaseUp())
    service.add_task(Task.from_fn("app", app, TaskKind.ONESHOT))
    await run_bounded(service)
    assert order == ["check", "check", "check", "check", "app"]
    assert service.status().task("database-up").restarts == 3


async def test_a_restarted_prepare_does_not_open_the_barrier_again(
    make_service: MakeService,
) -> None:
    slow_prepared = anyio.Event()
    started: list[str] = []

    class Crashes(UnconstrainedTask):
        id = "crashes"
        restart = Restart.on_failure(QUICK, max_restarts=None)
        runs = 0

        async def prepare(self) -> None:
            pass

        async def run(self, stop: StopReceiver) -> None:
            Crashes.runs += 1
            if Crashes.runs < 4:
                raise OSError("lost the socket")
            await stop.wait()

    class SlowPrepare(UnconstrainedTask):
        id = "slow"

        async def prepare(self) -> None:
            await slow_prepared.wait()

        async def run(self, stop: StopReceiver) -> None:
            await stop.wait()

    async def constrained(stop: StopReceiver) -> None:
        started.append("constrained")
        await stop.wait()

    service = make_service()
    service.add_task(Crashes())
    service.add_task(SlowPrepare())
    service.add_task(Task.from_fn("constrained", constrained))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await _until(lambda: Crashes.runs >= 4)
        await anyio.wait_all_tasks_blocked()
        assert started == []  # the barrier still waits for the slow prepare
        slow_prepared.set()
        await _until(lambda: started == ["constrained"])
        service.stop()


async def test_a_layer_can_add_a_supervised_task(make_service: MakeService) -> None:
    flaky = Flaky(1)

    class Layer(WiringLayer):
        name = "layer"

        async def wire(self, ctx: ServiceContext) -> None:
            ctx.add_task(flaky, restart=Restart.on_failure(QUICK))

    service = make_service()
    service.add_layer(Layer())
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await flaky.steady.wait()
        service.stop()
    assert service.status().task("flaky").restarts == 1


# ----- what is reported -----


async def test_metrics_count_the_restarts_of_supervised_tasks(make_service: MakeService) -> None:
    service = make_service()
    flaky = Flaky(2, restart=Restart.on_failure(QUICK))
    service.add_task(flaky)
    service.add_task(Task.from_fn("plain", _wait))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await flaky.steady.wait()
        text = render(service_collector(service)())  # type: ignore[arg-type]
        service.stop()
    assert "# TYPE wireframe_task_restarts_total counter" in text
    assert 'wireframe_task_restarts_total{task="flaky",kind="task"} 2' in text
    assert 'wireframe_task_restarts_total{task="plain"' not in text
    assert 'wireframe_task_state{task="flaky",kind="task",state="running"} 1' in text


async def test_the_stop_summary_shows_restarts_and_the_last_error(
    make_service: MakeService, caplog: pytest.LogCaptureFixture
) -> None:
    service = make_service()
    flaky = Flaky(2, restart=Restart.on_failure(QUICK))
    service.add_task(flaky)
    with caplog.at_level(logging.INFO, logger="wireframe.service"):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run_bounded, service)
            await flaky.steady.wait()
            service.stop()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    for n, record in enumerate(warnings, 1):
        assert re.fullmatch(
            rf"task 'flaky' failed after [0-9.]+ s: ValueError\('boom {n}'\); "
            rf"restart {n} in [0-9.]+ s",
            record.getMessage(),
        )
    assert all(r.exc_info is not None for r in warnings)  # each failure keeps its traceback
    restarted = [r.getMessage() for r in caplog.records if "restarted" in r.getMessage()]
    assert restarted == ["task 'flaky' restarted (restart 1)", "task 'flaky' restarted (restart 2)"]
    summary = caplog.records[-1]
    fields = json.loads(JsonFormatter().format(summary))
    [row] = fields["tasks"]
    assert row["restarts"] == 2
    assert row["last_error"] == "ValueError('boom 2')"
    assert "2 restarts, last error: ValueError('boom 2')" in row["outcome"]
    table = str(summary.__dict__["_wireframe_summary"])
    assert "2 restarts, last error:" in table
