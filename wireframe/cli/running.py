"""`wireframe run` and `wireframe worker`: long-running commands hosting a Service."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterable
from typing import Any, Literal, cast

import anyio

from wireframe.cli.commands import STORE_ENV, make_store, open_store
from wireframe.cli.errors import UsageError
from wireframe.cli.loading import load_object
from wireframe.cli.values import parse_duration, parse_positive_int, parse_tags
from wireframe.scheduler import ConfigError, Domain, Scheduler, Worker, scheduler_metrics
from wireframe.service import HealthServer, Service, ServiceConfigError
from wireframe.service.log import configure_logging, log_context
from wireframe.store import PostgresStore, Store

Backend = Literal["asyncio", "trio"]


def setup_logging(args: argparse.Namespace) -> int:
    """Install the log handler the options ask for (rich on a TTY, JSON lines otherwise)."""
    level = logging.getLevelName(args.log_level.upper())
    if not isinstance(level, int):
        raise UsageError(f"--log-level: unknown level {args.log_level!r}")
    try:
        configure_logging(level, args.log_format)
    except ValueError as exc:
        raise UsageError(f"--log-format: {exc}") from None
    return level


def cmd_run(args: argparse.Namespace) -> int:
    """Load a Service from ``module:attr`` or ``path/to/main.py`` and run it until stopped."""
    service = load_object(
        args.target,
        default_attrs=("service", "app"),
        accept=lambda o: isinstance(o, Service),
        what="a wireframe Service",
        made_by=(Service,),
    )
    apply_run_options(cast(Service, service), args)
    level = setup_logging(args)
    return cast(Service, service).run_sync(backend=args.backend, log_level=level)


def apply_run_options(service: Service, args: argparse.Namespace) -> None:
    """Apply ``--graceful-timeout``, ``--stop-delay`` and ``--health-port`` to a loaded Service.

    ``--health-port`` adds a HealthServer, unless the service has one already: that is a
    UsageError naming it (two servers would answer on two ports; drop one of them).
    """
    if args.graceful_timeout is not None:
        timeout = parse_duration(args.graceful_timeout, option="--graceful-timeout")
        service.graceful_timeout = timeout
    if args.stop_delay is not None:
        service.stop_delay = parse_duration(args.stop_delay, option="--stop-delay")
    if args.health_port is None:
        return
    existing = [t for t in service._tasks.values() if isinstance(t, HealthServer)]
    if existing:
        raise UsageError(
            f"--health-port: service {service.name!r} already has a health server "
            f"({existing[0]!r}); drop --health-port or that task"
        )
    try:
        service.add_task(HealthServer(service, host=args.health_host, port=args.health_port))
    except (ValueError, ServiceConfigError) as exc:
        raise UsageError(f"--health-port: {exc}") from None


def _is_app(obj: object) -> bool:
    if isinstance(obj, Scheduler | Worker | Domain):
        return True
    return isinstance(obj, list | tuple) and bool(obj) and all(isinstance(d, Domain) for d in obj)


def build_worker(args: argparse.Namespace, app: object) -> Scheduler:
    """A Scheduler running the app's domains on ``--store``, with the worker options applied."""
    base: Scheduler | Worker | None = None
    if isinstance(app, Scheduler | Worker):
        base = app
    if base is not None:
        domains: list[Domain] = list(base.domains.values())
    elif isinstance(app, Domain):
        domains = [app]
    else:
        domains = list(cast(Iterable[Domain], app))
    store = worker_store(args, base)
    options: dict[str, Any] = {}
    template = base.worker if isinstance(base, Scheduler) else base
    if template is not None:
        options = {
            "max_concurrency": template.limits.max_concurrency,
            "claim_ttl": template.claim_ttl,
            "batch_size": template.batch_size,
            "tags": template.tags,
            "aging_interval": template.aging_interval,
            "poll_interval": template.poll_interval,
            "resources": template.limits.budgets,
            "shutdown": template.shutdown,
            "cancel_grace": template.cancel_grace,
            "keep_history": template.keep_history,
        }
    if base is not None:
        options["middleware"] = base.middleware
    if args.concurrency is not None:
        options["max_concurrency"] = parse_positive_int(args.concurrency, option="--concurrency")
    if args.tags is not None:
        options["tags"] = parse_tags(args.tags)
    if args.worker_id:
        options["worker_id"] = args.worker_id
    state = base.provided if base is not None else ()
    try:
        return Scheduler(store, domains=domains, state=state, id="scheduler", **options)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None


def worker_store(args: argparse.Namespace, base: Scheduler | Worker | None) -> Store:
    """The store of ``--store`` (or ``$WIREFRAME_STORE``), else the app's own store object.

    The app's store is used as it is (its URL may hide a password; its options stay), so
    ``--reconnect-timeout`` needs ``--store`` unless it is the store's own already.
    """
    url = args.store or os.environ.get(STORE_ENV)
    reconnect = args.reconnect_timeout
    if reconnect is not None:
        reconnect = parse_duration(reconnect, option="--reconnect-timeout")
    if url:
        return make_store(url, reconnect_timeout=reconnect)
    if base is None:
        raise UsageError(f"no store given: pass --store URL or set {STORE_ENV}")
    store = base.store
    if reconnect is not None and not (
        isinstance(store, PostgresStore) and store.reconnect_timeout == reconnect
    ):
        raise UsageError(
            f"--reconnect-timeout needs --store URL: the app's store {store.url} is used as it is"
        )
    return store


def check_store(args: argparse.Namespace) -> None:
    """Open and close the ``--store`` once before the worker starts.

    A store that cannot be opened (unreachable, refused, a file that cannot be created) is
    then one line on stderr and exit code 1 (a CLIError), not a service that starts, logs
    and fails. The app's own store (no ``--store``) is opened by the worker itself.
    """
    url = args.store or os.environ.get(STORE_ENV)
    if not url:
        return
    store = make_store(url)

    async def check() -> None:
        await open_store(store)
        await store.close()

    anyio.run(check, backend=args.backend)


def cmd_worker(args: argparse.Namespace) -> int:
    """Run the app's job handlers against ``--store`` until SIGINT/SIGTERM."""
    graceful = parse_duration(args.graceful_timeout, option="--graceful-timeout")
    app = load_object(
        args.app,
        default_attrs=("scheduler", "worker", "domains", "app"),
        accept=_is_app,
        what="a Scheduler, a Worker, a Domain or a list of Domains",
    )
    scheduler = build_worker(args, app)
    check_store(args)
    service = Service(name=args.name, graceful_timeout=graceful)
    if args.stop_delay is not None:
        service.stop_delay = parse_duration(args.stop_delay, option="--stop-delay")
    service.add_task(scheduler)
    if args.health_port is not None:
        service.add_task(
            HealthServer(
                service,
                host=args.health_host,
                port=args.health_port,
                collectors=[scheduler_metrics(scheduler)],
            )
        )
    level = setup_logging(args)
    with log_context(service=service.name):  # a line of this service's log, like the rest
        logging.getLogger("wireframe.cli").info(
            "worker %s: domains %s on %s",
            scheduler.require_worker().worker_id,
            ", ".join(scheduler.domains),
            scheduler.store.url,
        )
    return service.run_sync(backend=cast(Backend, args.backend), log_level=level)
