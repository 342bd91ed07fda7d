"""Task kinds, Task.from_fn, the @service.task decorator and bad input at build time."""

from __future__ import annotations

import math
from collections.abc import Callable

import anyio
import pytest

from wireframe.service import (
    OneshotTask,
    Precondition,
    Service,
    ServiceConfigError,
    ShutdownHook,
    StopReceiver,
    Task,
    TaskKind,
    UnconstrainedOneshotTask,
    UnconstrainedTask,
)

MakeService = Callable[..., Service]


async def noop(stop: StopReceiver) -> None:
    pass


class Ticker(Task):
    id = "ticker"

    async def run(self, stop: StopReceiver) -> None:
        await stop.wait()


class PropertyId(Task):
    @property
    def id(self) -> str:  # type: ignore[override]
        return "from-property"

    async def run(self, stop: StopReceiver) -> None:
        await stop.wait()


def test_kinds_of_the_base_classes() -> None:
    assert Task.kind is TaskKind.TASK
    assert OneshotTask.kind is TaskKind.ONESHOT
    assert Precondition.kind is TaskKind.PRECONDITION
    assert UnconstrainedTask.kind is TaskKind.UNCONSTRAINED
    assert UnconstrainedOneshotTask.kind is TaskKind.UNCONSTRAINED_ONESHOT
    assert [k for k in TaskKind if k.constrained] == [TaskKind.TASK, TaskKind.ONESHOT]
    assert not TaskKind.TASK.oneshot and not TaskKind.UNCONSTRAINED.oneshot
    assert TaskKind.PRECONDITION.oneshot and TaskKind.UNCONSTRAINED_ONESHOT.oneshot


@pytest.mark.parametrize("kind", list(TaskKind))
def test_from_fn_gives_a_task_of_that_kind(kind: TaskKind) -> None:
    task = Task.from_fn("x", noop, kind=kind)
    assert isinstance(task, Task)
    assert task.id == "x"
    assert task.kind is kind
    assert "'x'" in repr(task)


def test_id_may_be_a_class_attribute_or_a_property(make_service: MakeService) -> None:
    service = make_service().add_task(Ticker()).add_task(PropertyId())
    assert [t.id for t in service.status().tasks] == ["ticker", "from-property"]


def test_decorator_adds_the_function_and_returns_it(make_service: MakeService) -> None:
    service = make_service()

    @service.task()
    async def ticker(stop: StopReceiver) -> None:
        await stop.wait()

    @service.task(id="mig", kind=TaskKind.UNCONSTRAINED_ONESHOT)
    async def migrate(stop: StopReceiver) -> None:
        pass

    assert callable(ticker) and ticker.__name__ == "ticker"
    tasks = {t.id: t.kind for t in service.status().tasks}
    assert tasks == {"ticker": TaskKind.TASK, "mig": TaskKind.UNCONSTRAINED_ONESHOT}


def test_decorator_without_parentheses_is_a_clear_error(make_service: MakeService) -> None:
    service = make_service()
    with pytest.raises(ServiceConfigError, match="parentheses"):
        service.task(noop)  # type: ignore[arg-type]


def test_decorator_rejects_a_sync_function(make_service: MakeService) -> None:
    service = make_service()
    with pytest.raises(ServiceConfigError, match="async function"):

        @service.task()  # type: ignore[type-var]
        def sync(stop: StopReceiver) -> None:
            pass


def test_add_methods_are_chainable(make_service: MakeService) -> None:
    service = make_service()
    assert service.add_task(Ticker()) is service
    assert service.add_shutdown_hook(ShutdownHook("h", noop_hook)) is service


async def noop_hook() -> None:
    pass


# ----- bad input: each a clear error naming the offending value -----


def test_non_task_object_is_rejected(make_service: MakeService) -> None:
    with pytest.raises(ServiceConfigError, match=r"expects a Task, got 42"):
        make_service().add_task(42)  # type: ignore[arg-type]


def test_plain_async_function_gets_a_hint(make_service: MakeService) -> None:
    with pytest.raises(ServiceConfigError, match=r"Task\.from_fn"):
        make_service().add_task(noop)  # type: ignore[arg-type]


def test_duplicate_id_names_both_tasks(make_service: MakeService) -> None:
    service = make_service().add_task(Ticker())
    expected = r"duplicate task id 'ticker': <oneshot 'ticker' from function noop>.*<Ticker"
    with pytest.raises(ServiceConfigError, match=expected):
        service.add_task(Task.from_fn("ticker", noop, kind=TaskKind.ONESHOT))
    with pytest.raises(ServiceConfigError, match=r"duplicate task id 'ticker'"):
        service.add_task(Ticker())


@pytest.mark.parametrize("bad", ["", "   ", 3, None])
def test_task_id_must_be_a_non_empty_str(bad: object) -> None:
    with pytest.raises(ServiceConfigError, match=repr(bad).replace("(", r"\(")):
        Task.from_fn(bad, noop)  # type: ignore[arg-type]


def test_task_without_an_id_is_rejected(make_service: MakeService) -> None:
    class NoId(Task):
        async def run(self, stop: StopReceiver) -> None:
            pass

    expected = r"id of task .*NoId must be a non-empty str, got None"
    with pytest.raises(ServiceConfigError, match=expected):
        make_service().add_task(NoId())


def test_from_fn_rejects_a_bad_kind_and_a_non_callable() -> None:
    with pytest.raises(ServiceConfigError, match="'oneshot'"):
        Task.from_fn("x", noop, kind="oneshot")  # type: ignore[arg-type]
    with pytest.raises(ServiceConfigError, match=r"'x'.*None"):
        Task.from_fn("x", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, -0.001, math.nan, "5", True])
def test_graceful_timeout_must_be_a_non_negative_number(bad: object) -> None:
    with pytest.raises(ServiceConfigError, match=r"graceful_timeout.*" + repr(bad)[:3]):
        Service("svc", graceful_timeout=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1, math.nan])
def test_hook_timeout_must_be_a_non_negative_number(bad: float) -> None:
    with pytest.raises(ServiceConfigError, match=r"shutdown hook timeout.*" + repr(bad)):
        ShutdownHook("h", noop_hook, timeout=bad)


def test_hook_needs_an_id_and_a_callable(make_service: MakeService) -> None:
    with pytest.raises(ServiceConfigError, match="shutdown hook id"):
        ShutdownHook("", noop_hook)
    with pytest.raises(ServiceConfigError, match=r"'h'.*42"):
        ShutdownHook("h", 42)  # type: ignore[arg-type]
    service = make_service().add_shutdown_hook(ShutdownHook("h", noop_hook))
    with pytest.raises(ServiceConfigError, match="duplicate shutdown hook id 'h'"):
        service.add_shutdown_hook(ShutdownHook("h", noop_hook))
    with pytest.raises(ServiceConfigError, match="expects a ShutdownHook"):
        service.add_shutdown_hook(noop_hook)  # type: ignore[arg-type]


def test_service_name_must_be_a_non_empty_str() -> None:
    with pytest.raises(ServiceConfigError, match="service name"):
        Service("")


@pytest.mark.anyio
async def test_empty_service_is_an_error(make_service: MakeService) -> None:
    service = make_service("empty")
    with pytest.raises(ServiceConfigError, match="service 'empty' has no tasks"):
        await service.run()


@pytest.mark.anyio
async def test_add_task_after_run_started_is_an_error(make_service: MakeService) -> None:
    service = make_service()
    errors: list[Exception] = []

    async def adder(stop: StopReceiver) -> None:
        for add in (
            lambda: service.add_task(Ticker()),
            lambda: service.add_shutdown_hook(ShutdownHook("late", noop_hook)),
        ):
            try:
                add()
            except ServiceConfigError as exc:
                errors.append(exc)

    service.add_task(Task.from_fn("adder", adder, kind=TaskKind.ONESHOT))
    with anyio.fail_after(5):
        await service.run()
    assert len(errors) == 2
    assert "cannot add task <Ticker 'ticker' (task)>: service 'svc' already started" in str(
        errors[0]
    )
    assert "late" in str(errors[1])
    assert [t.id for t in service.status().tasks] == ["adder"]


@pytest.mark.anyio
async def test_a_service_runs_once(make_service: MakeService) -> None:
    service = make_service().add_task(Task.from_fn("o", noop, kind=TaskKind.ONESHOT))
    await service.run()
    with pytest.raises(ServiceConfigError, match="already started"):
        await service.run()
