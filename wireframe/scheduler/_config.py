"""A worker's settings, checked once, for a standalone Worker and a Scheduler's embedded one."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import attrs

from wireframe.scheduler._leases import PROGRESS_EVERY
from wireframe.scheduler._middleware import check_middleware
from wireframe.scheduler._numbers import count, seconds
from wireframe.scheduler._running import default_worker_id
from wireframe.scheduler.clock import SYSTEM_CLOCK, Clock
from wireframe.scheduler.domain import check_resources, check_tags
from wireframe.scheduler.errors import ConfigError
from wireframe.scheduler.middleware import Middleware
from wireframe.scheduler.shutdown import ShutdownMode


@attrs.frozen
class WorkerConfig:
    """Validated worker settings (see `Worker` for what each means)."""

    worker_id: str
    claim_ttl: float
    batch_size: int
    tags: tuple[str, ...]
    aging_interval: float | None
    poll_interval: float
    max_concurrency: int
    resources: dict[str, int]
    shutdown: ShutdownMode
    cancel_grace: float
    keep_history: float | None
    clock: Clock
    progress_every: float
    middleware: tuple[Middleware, ...] = ()


def worker_config(
    *,
    where: str,
    worker_id: str | None = None,
    claim_ttl: float = 300.0,
    batch_size: int = 64,
    tags: Sequence[str] = (),
    aging_interval: float | None = 60.0,
    poll_interval: float = 1.0,
    max_concurrency: int = 8,
    resources: Mapping[str, int] | None = None,
    shutdown: ShutdownMode | None = None,
    cancel_grace: float = 5.0,
    keep_history: float | None = None,
    clock: Clock | None = None,
    progress_every: float = PROGRESS_EVERY,
    middleware: Iterable[Middleware] = (),
) -> WorkerConfig:
    """Check every setting, naming `where` and the setting in the error."""
    if shutdown is not None and not isinstance(shutdown, ShutdownMode):
        raise ConfigError(f"{where} shutdown must be a ShutdownMode, got {shutdown!r}")
    if worker_id is not None and (not isinstance(worker_id, str) or not worker_id):
        raise ConfigError(f"{where} worker_id must be a non-empty str, got {worker_id!r}")
    return WorkerConfig(
        worker_id=worker_id or default_worker_id(),
        claim_ttl=seconds(claim_ttl, f"{where} claim_ttl"),
        batch_size=count(batch_size, f"{where} batch_size"),
        tags=check_tags(tags, where=f"{where} tags"),
        aging_interval=_optional(aging_interval, f"{where} aging_interval"),
        poll_interval=seconds(poll_interval, f"{where} poll_interval"),
        max_concurrency=count(max_concurrency, f"{where} max_concurrency"),
        resources=check_resources(resources, where=f"{where} resources"),
        shutdown=shutdown or ShutdownMode.graceful(),
        cancel_grace=seconds(cancel_grace, f"{where} cancel_grace", zero=True),
        keep_history=_optional(keep_history, f"{where} keep_history"),
        clock=clock or SYSTEM_CLOCK,
        progress_every=seconds(progress_every, f"{where} progress_every"),
        middleware=check_middleware(middleware, where),
    )


def _optional(value: float | None, where: str) -> float | None:
    return None if value is None else seconds(value, where)
