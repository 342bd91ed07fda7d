"""Wiring layers: code that provides resources and adds tasks and hooks before the service runs."""

from __future__ import annotations

import abc
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Protocol, TypeVar, cast, overload

from wireframe.service._resources import (
    DEFAULT_CLOSE_TIMEOUT,
    ManagedResource,
    check_managed_args,
    check_resource_id,
    enter,
)
from wireframe.service.errors import (
    DuplicateResourceError,
    MissingResourceError,
    WiringError,
)
from wireframe.service.hooks import ShutdownHook
from wireframe.service.restart import Restart
from wireframe.service.task import Task

T = TypeVar("T")


class ServiceRegistry(Protocol):
    """What a ServiceContext needs of its Service (a Protocol, so wiring needs not import it)."""

    @property
    def name(self) -> str:
        """The service's name."""

    def _add_task(self, task: Task, layer: str | None, restart: Restart | None = None) -> None: ...

    def _add_hook(self, hook: ShutdownHook, layer: str | None) -> None: ...


class WiringLayer(abc.ABC):
    """A named piece of set-up: ``wire`` gets resources and adds tasks through the context."""

    name: str
    """Identifies the layer in errors and logs; a class attribute or property."""

    @abc.abstractmethod
    async def wire(self, ctx: ServiceContext) -> None:
        """Provide resources, add tasks and hooks; called once, in the order layers were added."""

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {getattr(self, 'name', '?')!r}>"


class ServiceContext:
    """What one wiring layer sees of the service: typed resources, tasks and hooks."""

    def __init__(self, service: ServiceRegistry, resources: Resources, layer: str) -> None:
        self._service = service
        self._resources = resources
        self._layer = layer

    @property
    def layer(self) -> str:
        """The name of the layer being wired."""
        return self._layer

    @property
    def service_name(self) -> str:
        """The name of the service being wired."""
        return self._service.name

    def provide(self, resource: object, *, as_type: type[Any] | None = None) -> None:
        """Make ``resource`` available to later layers under ``as_type`` (default: its type)."""
        self._resources.provide(self._layer, resource, as_type)

    @overload
    async def provide_managed(
        self,
        cm: AbstractAsyncContextManager[T] | AbstractContextManager[T],
        *,
        as_type: type[Any] | None = None,
        id: str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> T: ...

    @overload
    async def provide_managed(
        self,
        cm: object,
        *,
        as_type: type[Any] | None = None,
        id: str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> Any: ...

    async def provide_managed(
        self,
        cm: object,
        *,
        as_type: type[Any] | None = None,
        id: str | None = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    ) -> Any:
        """Enter the (async or sync) context manager ``cm`` and provide what it yields.

        The resource is provided as ``provide`` does (under ``as_type``, default its type) and
        returned. It is closed after the shutdown hooks, in reverse order of opening, within
        ``close_timeout`` seconds (also on a forced stop, and when wiring or the run fails); ``id``
        (default: the type's name) names it in ``status()``, the stop summary and errors.
        A sync context manager's ``__exit__`` runs on the event loop: its timeout cannot cut
        it short.
        """
        return await self._resources.provide_managed(self._layer, cm, as_type, id, close_timeout)

    def get(self, resource_type: type[T]) -> T:
        """Return the resource provided under ``resource_type`` (MissingResourceError if none)."""
        return self._resources.get(self._layer, resource_type)

    def has(self, resource_type: type[Any]) -> bool:
        """Return True if a resource was provided under ``resource_type``."""
        return resource_type in self._resources.items

    def add_task(self, task: Task, *, restart: Restart | None = None) -> ServiceContext:
        """Add a task to the service (with a restart policy if given); returns the context."""
        self._service._add_task(task, layer=self._layer, restart=restart)
        return self

    def add_shutdown_hook(self, hook: ShutdownHook) -> ServiceContext:
        """Add a shutdown hook to the service; returns the context."""
        self._service._add_hook(hook, layer=self._layer)
        return self


class Resources:
    """Resources keyed by type, each remembering the layer that provided it."""

    def __init__(self) -> None:
        self.items: dict[type[Any], tuple[object, str]] = {}
        self.managed: list[ManagedResource] = []
        """Managed resources still open, in the order they were opened."""
        self.opened: list[ManagedResource] = []
        """Every managed resource opened, in order (for ``status()``)."""

    def provide(self, layer: str, resource: object, as_type: type[Any] | None) -> None:
        """Store ``resource``; errors name the layer and type."""
        key = type(resource) if as_type is None else as_type
        if not isinstance(key, type):
            raise WiringError(layer, f"as_type must be a type, got {key!r}")
        if not _is_instance(resource, key):
            raise WiringError(
                layer, f"resource {resource!r} is not an instance of {key.__qualname__}"
            )
        if key in self.items:
            raise DuplicateResourceError(layer, key, self.items[key][1])
        self.items[key] = (resource, layer)

    async def provide_managed(
        self,
        layer: str,
        cm: object,
        as_type: type[Any] | None,
        id: object,
        close_timeout: object,
    ) -> object:
        """Enter ``cm``, remember how to close it, then store what it yields."""
        is_async, seconds = check_managed_args(layer, cm, close_timeout)
        if as_type is not None:
            self._check_key(layer, as_type)
        if id is not None:
            id = check_resource_id(layer, id, self.opened)
        resource, exit_fn = await enter(cm, is_async)
        key = type(resource) if as_type is None else as_type
        if id is None:
            id = check_resource_id(layer, key.__qualname__, self.opened)
        managed = ManagedResource(str(id), layer, seconds, exit_fn, is_async)
        self.managed.append(managed)  # from here on it is closed whatever happens next
        self.opened.append(managed)
        self.provide(layer, resource, as_type)
        return resource

    def _check_key(self, layer: str, key: object) -> None:
        if not isinstance(key, type):
            raise WiringError(layer, f"as_type must be a type, got {key!r}")
        if key in self.items:
            raise DuplicateResourceError(layer, key, self.items[key][1])

    def get(self, layer: str, resource_type: type[T]) -> T:
        """Fetch the resource stored under ``resource_type``; errors name the layer and type."""
        try:
            return cast(T, self.items[resource_type][0])
        except KeyError:
            raise MissingResourceError(layer, resource_type, list(self.items)) from None


def _is_instance(resource: object, key: type[Any]) -> bool:
    try:
        return isinstance(resource, key)
    except TypeError:  # e.g. a Protocol that is not runtime-checkable: trust the caller
        return True
