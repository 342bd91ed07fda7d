"""What a Scheduler and a Worker both show of what they share: the store, its events, the job
types and the shared state handlers read."""

from __future__ import annotations

import os
from typing import Any, Self

from wireframe.scheduler._catalog import catalog
from wireframe.scheduler._hub import Hub
from wireframe.scheduler._registry import Registry
from wireframe.scheduler._store_errors import store_errors
from wireframe.scheduler.domain import Domain, JobType
from wireframe.scheduler.events import EventBus
from wireframe.store import Store, store_from_url


def store_of(store: Store | str | os.PathLike[str]) -> Store:
    """The store given, or the one its URL names (InvalidStoreURL for a bad URL)."""
    if isinstance(store, Store):
        return store
    with store_errors():
        return store_from_url(store)


class Front:
    """The read-only faces of a hub and a registry (a mixin: the class sets both)."""

    _hub: Hub
    _registry: Registry
    _recorder: str
    """Who records the job types in the store (a worker id)."""

    @property
    def store(self) -> Store:
        """The store jobs live in."""
        return self._hub.store

    @property
    def events(self) -> EventBus:
        """The lifecycle events of this process's operations."""
        return self._hub.events

    @property
    def closed(self) -> bool:
        """True once the store was closed (its task ended), until it is opened again."""
        return self._hub.closed

    @property
    def domains(self) -> dict[str, Domain]:
        """The domains known here, by name."""
        return self._registry.domains

    @property
    def types(self) -> dict[str, JobType[Any, Any]]:
        """The job types of those domains, by `domain::name`."""
        return self._registry.types

    @property
    def provided(self) -> tuple[object, ...]:
        """The shared state given with `state=` or `provide` (handlers read it with `ctx.state`)."""
        return tuple(self._registry.shared.values())

    def provide(self, value: object) -> Self:
        """Make `value` available to every handler as `ctx.state(type(value))`."""
        self._registry.provide(value)
        return self

    async def open(self) -> None:
        """Open the store (idempotent); running the task, submits and queries call it for you.

        The first open records this process's job types in the store (`Store.job_types`).
        Raises StoreFailure (StoreSchemaError for a store a newer wireframe wrote)."""
        with store_errors():
            await self._hub.open()
            if not self._hub.types_recorded:
                self._hub.types_recorded = True
                types = catalog(self._registry.types.values(), self._recorder)
                try:
                    await self.store.record_job_types(types)
                except BaseException:
                    self._hub.types_recorded = False
                    raise
