"""Managed resources: entered while wiring, closed in reverse order after the shutdown hooks."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import pytest

from wireframe.service import (
    ResourceCloseFailedError,
    ResourceCloseTimeoutError,
    Service,
    ServiceConfigError,
    ServiceContext,
    ServiceError,
    ShutdownHook,
    StopReceiver,
    Task,
    TaskKind,
    TaskState,
    WiringError,
    WiringLayer,
)
from wireframe.service.log import render_summary, summary_fields

from service_support import run_bounded

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]


class Conn:
    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False


class Pool(Conn):
    pass


class Cache(Conn):
    pass


class Layer(WiringLayer):
    def __init__(self, name: str, wire: Callable[[ServiceContext], object]) -> None:
        self.name = name
        self._wire = wire

    async def wire(self, ctx: ServiceContext) -> None:
        result = self._wire(ctx)
        if result is not None:
            await result  # type: ignore[misc]


def opener(log: list[str], name: str, kind: type[Conn] = Conn):
    """An async context manager yielding a ``kind`` and logging its opening and closing."""

    @contextlib.asynccontextmanager
    async def cm() -> AsyncIterator[Conn]:
        conn = kind(name)
        log.append(f"open {name}")
        try:
            yield conn
        finally:
            await anyio.lowlevel.checkpoint()
            conn.closed = True
            log.append(f"close {name}")

    return cm()


def sync_opener(log: list[str], name: str, kind: type[Conn] = Conn):
    """The same as a plain (sync) context manager."""

    @contextlib.contextmanager
    def cm() -> Iterator[Conn]:
        conn = kind(name)
        log.append(f"open {name}")
        try:
            yield conn
        finally:
            conn.closed = True
            log.append(f"close {name}")

    return cm()


def oneshot(log: list[str]) -> Task:
    async def work(stop: StopReceiver) -> None:
        log.append("task")

    return Task.from_fn("work", work, TaskKind.ONESHOT)


async def test_resources_close_after_the_hooks_in_reverse_order(make_service: MakeService) -> None:
    log: list[str] = []
    seen: list[object] = []

    async def db(ctx: ServiceContext) -> None:
        pool = await ctx.provide_managed(opener(log, "pool", Pool))
        seen.append(pool)

    async def cache(ctx: ServiceContext) -> None:
        await ctx.provide_managed(sync_opener(log, "cache", Cache), as_type=Conn, id="the-cache")

    def app(ctx: ServiceContext) -> None:
        seen.extend([ctx.get(Pool), ctx.get(Conn)])
        ctx.add_task(oneshot(log))
        ctx.add_shutdown_hook(ShutdownHook("flush", lambda: log.append("hook")))

    service = make_service()
    service.add_layer(Layer("db", db)).add_layer(Layer("cache", cache)).add_layer(Layer("app", app))
    await run_bounded(service)

    assert log == ["open pool", "open cache", "task", "hook", "close cache", "close pool"]
    assert seen[0] is seen[1] and isinstance(seen[0], Pool) and seen[0].closed
    assert isinstance(seen[2], Cache) and seen[2].closed
    status = service.status()
    assert [(r.id, r.layer, r.state) for r in status.resources] == [
        ("Pool", "db", TaskState.FINISHED),
        ("the-cache", "cache", TaskState.FINISHED),
    ]
    assert [row["id"] for row in summary_fields(status)["resources"]] == ["Pool", "the-cache"]


async def test_a_layer_failing_halfway_closes_what_was_opened(make_service: MakeService) -> None:
    log: list[str] = []

    async def db(ctx: ServiceContext) -> None:
        await ctx.provide_managed(opener(log, "pool", Pool))

    async def broken(ctx: ServiceContext) -> None:
        await ctx.provide_managed(sync_opener(log, "cache", Cache))
        raise RuntimeError("no config for the queue")

    service = make_service()
    service.add_layer(Layer("db", db)).add_layer(Layer("broken", broken))
    service.add_task(oneshot(log))
    with pytest.raises(WiringError) as caught:
        await run_bounded(service)

    assert caught.value.layer == "broken" and "no config for the queue" in str(caught.value)
    assert log == ["open pool", "open cache", "close cache", "close pool"]  # no task ran
    assert [r.state for r in service.status().resources] == [TaskState.FINISHED] * 2


async def test_a_resource_that_cannot_be_provided_is_closed(make_service: MakeService) -> None:
    log: list[str] = []

    async def first(ctx: ServiceContext) -> None:
        await ctx.provide_managed(opener(log, "a", Pool))

    async def second(ctx: ServiceContext) -> None:  # a Pool again: a duplicate once entered
        await ctx.provide_managed(opener(log, "b", Pool), id="b")

    service = make_service().add_layer(Layer("first", first)).add_layer(Layer("second", second))
    service.add_task(oneshot(log))
    with pytest.raises(WiringError, match="already provided by layer 'first'"):
        await run_bounded(service)
    assert log == ["open a", "open b", "close b", "close a"]


async def test_a_service_failing_before_it_runs_closes_its_resources(
    make_service: MakeService,
) -> None:
    log: list[str] = []

    async def db(ctx: ServiceContext) -> None:
        await ctx.provide_managed(opener(log, "pool", Pool))

    service = make_service().add_layer(Layer("db", db))  # and no task
    with pytest.raises(ServiceConfigError, match="has no tasks"):
        await run_bounded(service)
    assert log == ["open pool", "close pool"]


async def test_close_failures_and_timeouts_are_reported_and_the_rest_still_close(
    make_service: MakeService,
) -> None:
    log: list[str] = []

    @contextlib.asynccontextmanager
    async def failing() -> AsyncIterator[Cache]:
        yield Cache("failing")
        raise OSError("connection reset")

    @contextlib.asynccontextmanager
    async def hanging() -> AsyncIterator[Conn]:
        yield Conn("hanging")
        await anyio.sleep_forever()

    async def wire(ctx: ServiceContext) -> None:
        await ctx.provide_managed(opener(log, "pool", Pool))
        await ctx.provide_managed(failing(), id="cache")
        await ctx.provide_managed(hanging(), id="hang", close_timeout=0.05)
        ctx.add_task(oneshot(log))

    service = make_service().add_layer(Layer("infra", wire))
    with pytest.raises(ServiceError) as caught:
        await run_bounded(service)

    assert log == ["open pool", "task", "close pool"]
    assert caught.value.failed_ids == ("hang", "cache")  # the order they were closed
    timeout, failed = caught.value.exceptions
    assert isinstance(timeout, ResourceCloseTimeoutError) and timeout.timeout == 0.05
    assert timeout.layer == "infra" and "did not close within 0.05 s" in str(timeout)
    assert isinstance(failed, ResourceCloseFailedError) and isinstance(failed.error, OSError)
    assert "resource 'cache' of wiring layer 'infra' failed to close" in str(failed)
    states = {r.id: (r.state, r.error) for r in service.status().resources}
    assert states["Pool"] == (TaskState.FINISHED, None)
    assert states["cache"][0] is TaskState.FAILED and "connection reset" in str(states["cache"][1])
    assert states["hang"] == (TaskState.CANCELLED, "timed out")
    table = render_summary(service.status())
    rows = [line for line in table.splitlines() if "resource" in line]
    assert [row.split()[1] for row in rows] == ["hang", "cache", "Pool"]  # as they were closed


async def test_resources_close_on_a_forced_stop(make_service: MakeService) -> None:
    log: list[str] = []
    started = anyio.Event()
    closing = anyio.Event()
    proceed = anyio.Event()

    @contextlib.asynccontextmanager
    async def slow() -> AsyncIterator[Cache]:
        log.append("open slow")
        yield Cache("slow")
        closing.set()
        await proceed.wait()  # the second force arrives while this one closes
        log.append("close slow")

    async def stubborn(stop: StopReceiver) -> None:
        started.set()
        await anyio.sleep_forever()  # ignores the stop: only the forced stop ends it

    async def wire(ctx: ServiceContext) -> None:
        await ctx.provide_managed(opener(log, "pool", Pool))
        await ctx.provide_managed(slow())
        ctx.add_task(Task.from_fn("stubborn", stubborn))
        ctx.add_shutdown_hook(ShutdownHook("hook", lambda: log.append("hook")))

    service = make_service(graceful_timeout=60.0).add_layer(Layer("infra", wire))
    errors: list[Exception] = []

    async def run() -> None:
        try:
            await run_bounded(service)
        except ServiceError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await started.wait()
        assert [r.state for r in service.status().resources] == [TaskState.RUNNING] * 2
        service.stop("test", force=True)
        await closing.wait()
        service.stop("again", force=True)
        proceed.set()

    assert log == ["open pool", "open slow", "close slow", "close pool"]  # the hook was skipped
    assert [r.state for r in service.status().resources] == [TaskState.FINISHED] * 2
    assert errors and set(errors[0].failed_ids) == {"stubborn", "hook"}  # no resource failed


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cm": object()}, "provide_managed expects an async or sync context manager"),
        ({"close_timeout": -1}, "close_timeout must be >= 0 seconds, got -1"),
        ({"close_timeout": "soon"}, "close_timeout must be a number of seconds, got 'soon'"),
        ({"id": ""}, "provide_managed id must be a non-empty str"),
        ({"as_type": "Pool"}, "as_type must be a type, got 'Pool'"),
    ],
)
async def test_bad_arguments_name_the_layer_and_open_nothing(
    make_service: MakeService, kwargs: dict[str, object], message: str
) -> None:
    log: list[str] = []

    async def wire(ctx: ServiceContext) -> None:
        args = dict(kwargs)
        cm = args.pop("cm", None) or opener(log, "pool", Pool)
        await ctx.provide_managed(cm, **args)  # type: ignore[arg-type]

    service = make_service().add_layer(Layer("db", wire)).add_task(oneshot(log))
    with pytest.raises(WiringError) as caught:
        await run_bounded(service)
    assert caught.value.layer == "db"
    assert str(caught.value).startswith("wiring layer 'db': ") and message in str(caught.value)
    assert log == []


async def test_a_coroutine_instead_of_a_context_manager_gets_a_hint(
    make_service: MakeService,
) -> None:
    async def connect() -> Pool:
        return Pool("x")

    async def wire(ctx: ServiceContext) -> None:
        coro = connect()
        try:
            await ctx.provide_managed(coro)
        finally:
            coro.close()

    service = make_service().add_layer(Layer("db", wire)).add_task(oneshot([]))
    with pytest.raises(WiringError, match="not a coroutine"):
        await run_bounded(service)


async def test_duplicate_resource_ids_name_both_layers(make_service: MakeService) -> None:
    log: list[str] = []

    async def first(ctx: ServiceContext) -> None:
        await ctx.provide_managed(opener(log, "a", Pool), id="db")

    async def second(ctx: ServiceContext) -> None:
        await ctx.provide_managed(opener(log, "b", Cache), id="db")

    service = make_service().add_layer(Layer("first", first)).add_layer(Layer("second", second))
    with pytest.raises(WiringError, match="'db' is already used by layer 'first'") as caught:
        await run_bounded(service.add_task(oneshot(log)))
    assert caught.value.layer == "second"
    assert log == ["open a", "close a"]


async def test_a_run_cancelled_from_outside_still_closes_its_resources(
    make_service: MakeService,
) -> None:
    log: list[str] = []
    started = anyio.Event()

    async def forever(stop: StopReceiver) -> None:
        started.set()
        await anyio.sleep_forever()

    async def wire(ctx: ServiceContext) -> None:
        await ctx.provide_managed(opener(log, "pool", Pool))
        await ctx.provide_managed(sync_opener(log, "cache", Cache))
        ctx.add_task(Task.from_fn("forever", forever))

    service = make_service().add_layer(Layer("infra", wire))
    async with anyio.create_task_group() as tg:
        tg.start_soon(run_bounded, service)
        await started.wait()
        tg.cancel_scope.cancel()
    assert log == ["open pool", "open cache", "close cache", "close pool"]


async def test_a_close_failure_after_a_wiring_failure_leaves_the_wiring_error(
    make_service: MakeService,
) -> None:
    @contextlib.asynccontextmanager
    async def failing() -> AsyncIterator[Pool]:
        yield Pool("failing")
        raise OSError("connection reset")

    async def db(ctx: ServiceContext) -> None:
        await ctx.provide_managed(failing())

    def broken(ctx: ServiceContext) -> None:
        raise RuntimeError("bad config")

    service = make_service().add_layer(Layer("db", db)).add_layer(Layer("app", broken))
    with pytest.raises(WiringError, match="bad config") as caught:
        await run_bounded(service.add_task(oneshot([])))
    assert caught.value.layer == "app"
    assert caught.value.__notes__ == [
        "resource 'Pool' of wiring layer 'db' failed to close: OSError('connection reset')"
    ]
    (pool,) = service.status().resources
    assert pool.state is TaskState.FAILED and "connection reset" in str(pool.error)
