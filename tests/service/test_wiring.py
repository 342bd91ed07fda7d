"""Wiring layers: order, typed resources, and the errors naming the layer and type."""

from __future__ import annotations

from collections.abc import Callable

import attrs
import pytest

from wireframe.service import (
    DuplicateResourceError,
    MissingResourceError,
    Service,
    ServiceConfigError,
    ServiceContext,
    ShutdownHook,
    StopReceiver,
    Task,
    TaskKind,
    TaskState,
    WiringError,
    WiringLayer,
)

from service_support import run_bounded

pytestmark = pytest.mark.anyio
MakeService = Callable[..., Service]


@attrs.frozen
class Config:
    url: str


class Pool:
    def __init__(self, config: Config) -> None:
        self.config = config


class BasePool(Pool):
    pass


class Layer(WiringLayer):
    def __init__(self, name: str, wire: Callable[[ServiceContext], None]) -> None:
        self.name = name
        self._wire = wire

    async def wire(self, ctx: ServiceContext) -> None:
        self._wire(ctx)


async def test_layers_wire_in_order_before_any_task_starts(make_service: MakeService) -> None:
    log: list[str] = []
    seen: list[Pool] = []

    async def use_pool(stop: StopReceiver) -> None:
        log.append("task")

    def config_layer(ctx: ServiceContext) -> None:
        log.append("wire config")
        ctx.provide(Config("sqlite://"))
        ctx.add_task(Task.from_fn("early", use_pool, kind=TaskKind.UNCONSTRAINED_ONESHOT))

    def pool_layer(ctx: ServiceContext) -> None:
        log.append("wire pool")
        assert ctx.layer == "pool" and ctx.service_name == "svc"
        assert ctx.has(Config) and not ctx.has(Pool)
        pool = Pool(ctx.get(Config))
        ctx.provide(pool)
        seen.append(ctx.get(Pool))
        ctx.add_task(Task.from_fn("late", use_pool, kind=TaskKind.ONESHOT))
        ctx.add_shutdown_hook(ShutdownHook("close", lambda: log.append("close")))

    service = make_service()
    assert service.add_layer(Layer("config", config_layer)) is service
    service.add_layer(Layer("pool", pool_layer))
    await run_bounded(service)
    assert log == ["wire config", "wire pool", "task", "task", "close"]
    assert seen[0].config == Config("sqlite://")
    assert [t.id for t in service.status().tasks] == ["early", "late"]


async def test_provide_as_a_base_type(make_service: MakeService) -> None:
    got: list[Pool] = []

    def provide(ctx: ServiceContext) -> None:
        ctx.provide(BasePool(Config("x")), as_type=Pool)

    def get(ctx: ServiceContext) -> None:
        got.append(ctx.get(Pool))
        ctx.add_task(Task.from_fn("t", _noop, kind=TaskKind.ONESHOT))

    service = make_service().add_layer(Layer("a", provide)).add_layer(Layer("b", get))
    await run_bounded(service)
    assert isinstance(got[0], BasePool)


async def test_provide_as_a_type_it_is_not(make_service: MakeService) -> None:
    def provide(ctx: ServiceContext) -> None:
        ctx.provide("text", as_type=Pool)

    service = make_service().add_layer(Layer("bad", provide))
    with pytest.raises(WiringError, match=r"layer 'bad': resource 'text' is not .*Pool"):
        await run_bounded(service)


async def _noop(stop: StopReceiver) -> None:
    pass


async def test_missing_resource_names_the_layer_and_type(make_service: MakeService) -> None:
    ran: list[str] = []

    async def task(stop: StopReceiver) -> None:
        ran.append("task")

    def first(ctx: ServiceContext) -> None:
        ctx.add_task(Task.from_fn("t", task, kind=TaskKind.UNCONSTRAINED))
        ctx.provide(Config("x"))

    def needs_pool(ctx: ServiceContext) -> None:
        ctx.get(Pool)

    service = make_service().add_layer(Layer("first", first))
    service.add_layer(Layer("api", needs_pool))
    with pytest.raises(MissingResourceError) as info:
        await run_bounded(service)
    assert info.value.layer == "api"
    assert info.value.resource_type is Pool
    assert "wiring layer 'api': no resource of type" in str(info.value)
    assert "test_wiring.Pool" in str(info.value) and "Config" in str(info.value)
    assert isinstance(info.value, LookupError) and isinstance(info.value, ServiceConfigError)
    assert info.value.errors == (info.value,) and info.value.layers == ("api",)
    assert ran == []


async def test_duplicate_resource_names_both_layers_and_the_type(
    make_service: MakeService,
) -> None:
    def provide(ctx: ServiceContext) -> None:
        ctx.provide(Config("x"))

    service = make_service().add_layer(Layer("one", provide)).add_layer(Layer("two", provide))
    with pytest.raises(DuplicateResourceError) as info:
        await run_bounded(service)
    assert info.value.layer == "two" and info.value.first_layer == "one"
    assert "wiring layer 'two': resource type test_wiring.Config" in str(info.value)
    assert "already provided by layer 'one'" in str(info.value)


async def test_layer_raising_is_a_wiring_error_before_any_task(
    make_service: MakeService,
) -> None:
    ran: list[str] = []

    async def task(stop: StopReceiver) -> None:
        ran.append("task")

    def broken(ctx: ServiceContext) -> None:
        raise ConnectionError("no database")

    service = make_service().add_task(Task.from_fn("t", task, kind=TaskKind.UNCONSTRAINED))
    service.add_layer(Layer("db", broken))
    with pytest.raises(WiringError, match=r"wiring layer 'db': wire\(\) raised ConnectionError"):
        await run_bounded(service)
    assert ran == []


async def test_bad_task_from_a_layer_names_the_layer(make_service: MakeService) -> None:
    def dup(ctx: ServiceContext) -> None:
        ctx.add_task(Task.from_fn("t", _noop))

    service = make_service().add_task(Task.from_fn("t", _noop))
    service.add_layer(Layer("dup", dup))
    with pytest.raises(WiringError, match=r"wiring layer 'dup': duplicate task id 't'"):
        await run_bounded(service)


def test_same_layer_twice_is_wired_once_and_name_clashes_are_errors(
    make_service: MakeService,
) -> None:
    class Other(Layer):
        pass

    service = make_service()
    service.add_layer(Layer("a", lambda ctx: None)).add_layer(Layer("a", lambda ctx: None))
    assert len(service._layers) == 1
    with pytest.raises(ServiceConfigError, match="duplicate wiring layer name 'a'"):
        service.add_layer(Other("a", lambda ctx: None))
    with pytest.raises(ServiceConfigError, match="expects a WiringLayer, got 'x'"):
        service.add_layer("x")  # type: ignore[arg-type]
    with pytest.raises(ServiceConfigError, match="name of wiring layer"):
        service.add_layer(Layer("", lambda ctx: None))


async def test_every_failing_layer_is_reported_in_one_error_in_the_order_added(
    make_service: MakeService,
) -> None:
    wired: list[str] = []

    def broken_db(ctx: ServiceContext) -> None:
        wired.append("db")
        raise ConnectionError("no database")

    def config(ctx: ServiceContext) -> None:
        wired.append("config")
        ctx.provide(Config("x"))

    def api(ctx: ServiceContext) -> None:  # fails only because 'db' never provided its Pool
        wired.append("api")
        ctx.get(Pool)

    def again(ctx: ServiceContext) -> None:
        wired.append("again")
        ctx.provide(Config("y"))

    def dup_task(ctx: ServiceContext) -> None:
        wired.append("dup-task")
        ctx.add_task(Task.from_fn("t", _noop))

    service = make_service().add_task(Task.from_fn("t", _noop))
    for name, wire in [
        ("db", broken_db),
        ("config", config),
        ("api", api),
        ("again", again),
        ("dup-task", dup_task),
    ]:
        service.add_layer(Layer(name, wire))
    with pytest.raises(WiringError) as info:
        await run_bounded(service)
    err = info.value
    assert wired == ["db", "config", "api", "again", "dup-task"]
    assert isinstance(err, ServiceConfigError)
    assert err.layer == "db"  # the first failing layer, as a single failure reports it
    assert err.layers == ("db", "api", "again", "dup-task")
    db, missing, dup, task = err.errors
    assert isinstance(db.__cause__, ConnectionError)
    assert isinstance(missing, MissingResourceError) and missing.resource_type is Pool
    assert isinstance(dup, DuplicateResourceError) and dup.first_layer == "config"
    assert "duplicate task id 't'" in str(task)
    message = str(err)
    assert message.startswith("4 wiring layers failed: ")
    for part in (
        "wiring layer 'db': wire() raised ConnectionError('no database')",
        "wiring layer 'api': no resource of type test_wiring.Pool was provided "
        "(available: test_wiring.Config) (perhaps because layer 'db' failed first)",
        "wiring layer 'again': resource type test_wiring.Config is already provided "
        "by layer 'config'",
        "wiring layer 'dup-task': duplicate task id 't'",
    ):
        assert part in message
    assert message.index("'db'") < message.index("'api'") < message.index("'again'")
    assert service.status().task("t").state is TaskState.PENDING  # nothing ran


def test_combining_wiring_errors() -> None:
    one = WiringError("a", "broken")
    assert WiringError.combine([one]) is one
    missing = MissingResourceError("c", Pool, [])
    both = WiringError.combine([one, WiringError("b", "also"), missing])
    assert both.errors == (one, both.errors[1], missing) and both.layers == ("a", "b", "c")
    assert "(perhaps because layers 'a', 'b' failed first)" in str(both)
    assert WiringError.combine([both, one]).errors == (*both.errors, one)
    with pytest.raises(ValueError, match="at least one"):
        WiringError.combine([])
