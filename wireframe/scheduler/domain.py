"""Domains group job types; `@domain.job` and `Handler` subclasses register them."""

from __future__ import annotations

import abc
import inspect
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

from wireframe.scheduler._shapes import Shape
from wireframe.scheduler._typevars import PayloadT, ResultT
from wireframe.scheduler.codec import (
    ANY_OBJECT,
    job_type_name,
    payload_of,
    result_type_of,
    validate_name,
)
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.flow import (
    Cost,
    Flow,
    Rate,
    RateKey,
    check_cost,
    check_rate,
    check_rate_key,
    type_flow,
)
from wireframe.scheduler.keys import KeyPolicy, key_policy
from wireframe.scheduler.priority import Priority, coerce_priority
from wireframe.scheduler.retry import Retry, coerce_retry
from wireframe.store.records import DEFAULT_MAX_RECLAIMS

if TYPE_CHECKING:
    from wireframe.scheduler.context import JobContext

P = TypeVar("P")
R = TypeVar("R")

HandlerFn = Callable[[Any, "JobContext"], Awaitable[Any]]
KeyFn = Callable[[Any], str]


class Handler(abc.ABC, Generic[PayloadT, ResultT]):
    """A class-based handler: `execute` runs the job; an optional `finalize` runs after children.

    Generic in its payload and result types for type checkers: `class Crop(Handler[Box,
    Image])` registers as a `JobType[Box, Image]`; a bare `Handler` is `Handler[Any, Any]`.
    """

    @abc.abstractmethod
    async def execute(self, job: PayloadT, ctx: JobContext) -> ResultT:
        """Run one job."""

    async def finalize(self, job: PayloadT, ctx: JobContext) -> Any:
        """Run once after every child of the job has ended (override to use)."""
        return None

    @classmethod
    def has_finalize(cls) -> bool:
        """True if the subclass overrides `finalize`."""
        return cls.finalize is not Handler.finalize


def _check_positive(value: object, *, where: str, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{where} must be a finite number of seconds, got {value!r}")
    if value <= 0:
        raise ConfigError(f"{where} must be > 0, got {value!r}")
    return float(value)


def _check_limit(value: object, *, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where} must be a positive int or None, got {value!r}")
    return value


def check_max_reclaims(value: object, *, where: str) -> int:
    """Validate a reclaim budget: how many lost workers a job survives (an int >= 0)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{where} must be an int >= 0, got {value!r}")
    return value


def check_resources(value: object, *, where: str) -> dict[str, int]:
    """Validate a `{"name": amount}` resource request."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a mapping of resource name to amount, got {value!r}")
    out: dict[str, int] = {}
    for name, amount in value.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: resource name must be a non-empty str, got {name!r}")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise ConfigError(
                f"{where}: resource {name!r} amount must be an int >= 1, got {amount!r}"
            )
        out[name] = amount
    return out


def check_tags(value: object, *, where: str) -> tuple[str, ...]:
    """Validate a collection of tag strings."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ConfigError(f"{where} must be a collection of str, got {value!r}")
    tags = tuple(value)
    for tag in tags:
        if not isinstance(tag, str) or not tag or "," in tag:
            raise ConfigError(f"{where}: a tag must be a non-empty str without commas, got {tag!r}")
    return tuple(sorted(set(tags)))


class JobType(Generic[P, R]):
    """One registered job type (`<domain>::<name>`) with its handler and its policies."""

    def __init__(
        self,
        domain: Domain,
        name: str,
        execute: HandlerFn,
        payload_type: type | None,
        *,
        retry: Retry,
        key: KeyFn | None,
        timeout: float | None,
        priority: int | None,
        max_concurrency: int | None,
        resources: dict[str, int],
        ttl: float | None,
        tags: tuple[str, ...],
        preemptible: bool,
        finalize: HandlerFn | None = None,
        max_reclaims: int = DEFAULT_MAX_RECLAIMS,
        payload_shape: Shape = ANY_OBJECT,
        flow: Flow | None = None,
        key_policy: KeyPolicy | None = None,
    ) -> None:
        self.domain = domain
        self.name = name
        self.type = job_type_name(domain.name, name)
        self.execute = execute
        self.payload_type = payload_type
        self.payload_shape = payload_shape
        """What a payload's fields are checked against at submit (from the annotations)."""
        self.retry = retry
        self.key = key
        self.timeout = timeout
        self.priority = priority
        self.max_concurrency = max_concurrency
        self.resources = resources
        self.ttl = ttl
        self.tags = tags
        self.preemptible = preemptible
        self.finalize_fn = finalize
        self.max_reclaims = max_reclaims
        """How many lost workers (expired leases) a job survives; none spends an attempt."""
        self.flow = flow if flow is not None else Flow()
        """Its rate limits (its domain's and its own), and its jobs' rate key and cost."""
        self._result_type: tuple[object] | None = None
        self.key_policy = key_policy if key_policy is not None else domain.key_policy
        """Its concurrency key, cap and fair-share weight (its own, or its domain's), or None."""

    def finalize(
        self, fn: Callable[[P, JobContext], Awaitable[Any]]
    ) -> Callable[[P, JobContext], Awaitable[Any]]:
        """Decorator: register the function that runs once after all of a job's children end."""
        if self.finalize_fn is not None:
            raise ConfigError(f"job type {self.type!r} already has a finalize handler")
        payload_of(fn, where=f"finalize handler of {self.type}")
        self.finalize_fn = fn
        self._result_type = None
        return fn

    @property
    def result_type(self) -> object:
        """What `Scheduler.result` decodes this type's results into: the handler's return
        annotation (an attrs class comes back as one); `None` if it is not known.

        A finalize handler's result replaces the handler's unless it is None: with one
        annotated `-> None` the handler's annotation holds; with one annotated as the handler
        is, so does that; otherwise the result is either's, and is not converted.
        """
        if self._result_type is None:
            hint = result_type_of(self.execute)
            if self.finalize_fn is not None and hint is not None:
                after = result_type_of(self.finalize_fn)
                if after is not type(None) and after != hint:
                    hint = None
            self._result_type = (hint,)
        return self._result_type[0]

    @property
    def effective_priority(self) -> int:
        """The type's priority, or its domain's."""
        return self.priority if self.priority is not None else self.domain.priority

    async def __call__(self, job: P, ctx: JobContext) -> R:
        """Call the handler directly (handy in unit tests)."""
        result: R = await self.execute(job, ctx)
        return result

    def __repr__(self) -> str:
        return f"<JobType {self.type}>"


class Domain:
    """A named group of job types sharing a default priority, a concurrency limit and state.

    `concurrency_key=` (payload -> str, run at submission), `max_per_key=` and `weight=` give
    every job type of the domain one set of keys (a type may declare its own instead): at most
    `max_per_key` jobs of one key run at once across all workers, and within a priority the
    keys take turns, `weight` turns each (`wireframe.scheduler.keys`).
    """

    def __init__(
        self,
        name: str,
        *,
        priority: int | Priority = Priority.NORMAL,
        max_concurrency: int | None = None,
        state: Iterable[object] = (),
        rate: Rate | None = None,
        rate_key: RateKey | None = None,
        cost: Cost = 1,
        concurrency_key: KeyFn | None = None,
        max_per_key: int | None = None,
        weight: float | None = None,
    ) -> None:
        validate_name(name, what="domain name")
        self.name = name
        self.priority = coerce_priority(priority, where=f"Domain({name!r}) priority")
        self.max_concurrency = _check_limit(
            max_concurrency, where=f"Domain({name!r}) max_concurrency"
        )
        self.rate = check_rate(rate, where=f"Domain({name!r}) rate")
        """At most how many of its jobs start per period, across every worker (or None)."""
        self.rate_key = check_rate_key(rate_key, where=f"Domain({name!r}) rate_key")
        """Splits its rate into one bucket per key of a payload (or None: one bucket)."""
        if self.rate_key is not None and self.rate is None:
            raise ConfigError(f"Domain({name!r}): rate_key needs a rate= to key")
        self.cost = check_cost(cost, where=f"Domain({name!r}) cost", rates=[self.rate])
        """Tokens each of its jobs takes by default (an int or a payload -> int callable)."""
        self.key_policy = key_policy(
            concurrency_key, max_per_key, weight, scope=name, where=f"Domain({name!r})"
        )
        """The concurrency key, cap and weight its job types share (unless they declare one)."""
        self.jobs: dict[str, JobType[Any, Any]] = {}
        self._state: dict[type, object] = {}
        for item in state:
            self.provide(item)

    def provide(self, value: object) -> Domain:
        """Make `value` available to this domain's handlers as `ctx.state(type(value))`."""
        self._state[type(value)] = value
        return self

    def state_for(self, cls: type) -> object | None:
        """The domain state registered for `cls` (or a subclass), or None."""
        if cls in self._state:
            return self._state[cls]
        for value in self._state.values():
            if isinstance(value, cls):
                return value
        return None

    @overload
    def job(self, fn: Callable[[P, JobContext], Awaitable[R]]) -> JobType[P, R]: ...

    @overload
    def job(
        self,
        fn: None = None,
        *,
        name: str | None = None,
        retry: Retry | int | None = None,
        key: KeyFn | None = None,
        timeout: float | None = None,
        priority: int | Priority | None = None,
        max_concurrency: int | None = None,
        resources: Mapping[str, int] | None = None,
        ttl: float | None = None,
        tags: Iterable[str] = (),
        preemptible: bool = False,
        max_reclaims: int = DEFAULT_MAX_RECLAIMS,
        rate: Rate | None = None,
        rate_key: RateKey | None = None,
        cost: Cost | None = None,
        concurrency_key: KeyFn | None = None,
        max_per_key: int | None = None,
        weight: float | None = None,
    ) -> Callable[[Callable[[P, JobContext], Awaitable[R]]], JobType[P, R]]: ...

    def job(self, fn: Any = None, **options: Any) -> Any:
        """Decorator registering an `async def handler(job: Payload, ctx: JobContext)`."""
        if fn is not None:
            return self._register_fn(fn, **options)

        def decorate(f: Callable[[P, JobContext], Awaitable[R]]) -> JobType[P, R]:
            return self._register_fn(f, **options)

        return decorate

    def register(
        self,
        handler: Handler[P, R] | type[Handler[P, R]],
        *,
        name: str | None = None,
        **options: Any,
    ) -> JobType[P, R]:
        """Register a `Handler` subclass (or instance); the name defaults to the class name."""
        if isinstance(handler, type):
            if not issubclass(handler, Handler):
                raise ConfigError(
                    f"Domain({self.name!r}).register: {handler!r} is not a Handler subclass"
                )
            instance = handler()
        elif isinstance(handler, Handler):
            instance = handler
        else:
            raise ConfigError(f"Domain({self.name!r}).register: {handler!r} is not a Handler")
        cls = type(instance)
        job_name = name or cls.__name__
        payload = payload_of(instance.execute, where=f"{cls.__qualname__}.execute")
        finalize = instance.finalize if cls.has_finalize() else None
        return self._add(job_name, instance.execute, payload, finalize=finalize, **options)

    def _register_fn(
        self, fn: Any, *, name: str | None = None, **options: Any
    ) -> JobType[Any, Any]:
        if not callable(fn):
            raise ConfigError(f"Domain({self.name!r}).job: {fn!r} is not a function")
        where = f"handler {getattr(fn, '__qualname__', fn)!r}"
        return self._add(name or fn.__name__, fn, payload_of(fn, where=where), **options)

    def _add(
        self,
        name: str,
        execute: HandlerFn,
        payload: tuple[type | None, Shape],
        *,
        finalize: HandlerFn | None = None,
        retry: Retry | int | None = None,
        key: KeyFn | None = None,
        timeout: float | None = None,
        priority: int | Priority | None = None,
        max_concurrency: int | None = None,
        resources: Mapping[str, int] | None = None,
        ttl: float | None = None,
        tags: Iterable[str] = (),
        preemptible: bool = False,
        max_reclaims: int = DEFAULT_MAX_RECLAIMS,
        rate: Rate | None = None,
        rate_key: RateKey | None = None,
        cost: Cost | None = None,
        concurrency_key: KeyFn | None = None,
        max_per_key: int | None = None,
        weight: float | None = None,
    ) -> JobType[Any, Any]:
        validate_name(name, what="job name")
        type_name = job_type_name(self.name, name)
        policy = key_policy(concurrency_key, max_per_key, weight, scope=type_name, where=type_name)
        if name in self.jobs:
            raise ConfigError(f"job type {type_name!r} is already registered")
        if key is not None and not callable(key):
            raise ConfigError(f"{type_name}: key must be a callable payload -> str, got {key!r}")
        if key is not None and len(inspect.signature(key).parameters) != 1:
            raise ConfigError(
                f"{type_name}: key callable must take exactly one argument (the payload)"
            )
        job_type: JobType[Any, Any] = JobType(
            self,
            name,
            execute,
            payload[0],
            retry=coerce_retry(retry, where=f"{type_name} retry"),
            key=key,
            timeout=_check_positive(timeout, where=f"{type_name} timeout"),
            priority=None
            if priority is None
            else coerce_priority(priority, where=f"{type_name} priority"),
            max_concurrency=_check_limit(max_concurrency, where=f"{type_name} max_concurrency"),
            resources=check_resources(resources, where=f"{type_name} resources"),
            ttl=_check_positive(ttl, where=f"{type_name} ttl"),
            tags=check_tags(tags, where=f"{type_name} tags"),
            preemptible=bool(preemptible),
            finalize=finalize,
            max_reclaims=check_max_reclaims(max_reclaims, where=f"{type_name} max_reclaims"),
            payload_shape=payload[1],
            flow=type_flow(self, type_name, rate, rate_key, cost),
            key_policy=policy,
        )
        self.jobs[name] = job_type
        return job_type

    def __repr__(self) -> str:
        return f"<Domain {self.name!r} jobs={sorted(self.jobs)}>"
