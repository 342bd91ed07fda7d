"""`wireframe submit` and `wireframe types`: the job types workers record in the store.

A worker (or scheduler) records each of its job types when it opens the store: the payload's
fields and their types, and the type's settings (retry policy, priority, ttl, tags,
resources...). `types` lists them; `submit` checks a payload against them, as `Scheduler.submit`
checks it against the payload class, and applies the type's settings, so a job submitted from
the command line is the job the application would have submitted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import attrs
from rich.text import Text

from wireframe.cli import render
from wireframe.cli.commands import Output, opened
from wireframe.cli.errors import CLIError, UsageError
from wireframe.cli.loading import load_object
from wireframe.cli.values import (
    parse_duration,
    parse_job_id,
    parse_job_type,
    parse_positive_int,
    parse_priority,
    parse_tags,
)
from wireframe.scheduler import ConfigError, Domain, PayloadError, Scheduler, Worker
from wireframe.scheduler._catalog import catalog
from wireframe.scheduler._shapes import Mismatch, ObjectShape, Shape, shape_from_description
from wireframe.scheduler.codec import canonical_json, decode_payload
from wireframe.scheduler.domain import JobType
from wireframe.scheduler.flow import recorded_rate_fields, submitted
from wireframe.scheduler.submission import key_of
from wireframe.store import Duplicate, NewJob, NewJobType, Store, Submitted, UnknownJobError

__all__ = ["add_parsers", "cmd_submit", "cmd_types", "parse_resources", "parse_run_at"]

NO_RECORD_HINT = (
    "start a worker of its app once against this store (workers record their job types when"
    " they start), or pass --app module:attr to learn the types from the app's code"
)


def add_parsers(
    sub: argparse._SubParsersAction[Any], parents: Sequence[argparse.ArgumentParser]
) -> None:
    """Add `submit` and `types` (`parents`: the ``--store`` and ``--json`` option parsers)."""
    p = sub.add_parser(
        "submit",
        parents=list(parents),
        help="submit a job to the store (checked against its job type)",
        description="Submit a job of a recorded job type: the payload is checked against the"
        " type's fields, and the type's settings (retry policy, priority, ttl, tags, resources)"
        " apply unless an option says otherwise.",
    )
    p.add_argument("type", metavar="DOMAIN::NAME")
    p.add_argument("--payload", default="{}", metavar="JSON", help="a JSON object")
    p.add_argument(
        "--priority", help="low, normal, high, critical or an integer (default: the job type's)"
    )
    p.add_argument("--delay", metavar="DURATION", help="run after e.g. 30s, 5m")
    p.add_argument(
        "--run-at",
        metavar="TIME",
        help="run at an ISO 8601 time, e.g. 2026-05-01T14:30:00+02:00 (no offset: local time)",
    )
    p.add_argument(
        "--ttl",
        metavar="DURATION",
        help="expire if not started within, e.g. 1h (default: the job type's ttl)",
    )
    p.add_argument("--key", help="dedup key: no second active job of the type with this key")
    p.add_argument(
        "--debounce",
        metavar="DURATION",
        help="with a key: replace the payload of the job with this key that waits to start, and"
        " run it this long from now (e.g. 5s); otherwise run a new job then",
    )
    p.add_argument(
        "--throttle",
        metavar="DURATION",
        help="with a key: refused (duplicate) within this long of the last accepted submit",
    )
    p.add_argument("--tags", metavar="a,b", help="tags, added to the job type's")
    p.add_argument(
        "--resources",
        metavar="NAME=N,...",
        help="resources the job holds while it runs (default: the job type's)",
    )
    p.add_argument("--depends-on", metavar="ID,ID")
    p.add_argument(
        "--max-attempts",
        metavar="N",
        help="attempts allowed (default: the job type's retry policy)",
    )
    p.add_argument(
        "--app",
        metavar="module:attr",
        help="learn the job type from the app's code (a Scheduler, Worker, Domain or list of"
        " Domains) instead of the store's record",
    )
    sub.add_parser(
        "types",
        parents=list(parents),
        help="list the job types workers recorded: payload fields and settings",
    )


# -- option values ---------------------------------------------------------------------------


def parse_run_at(text: str) -> float:
    """An ISO 8601 time as a timestamp (``Z`` is UTC; without an offset, local time)."""
    value = text.strip()
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--run-at: invalid time {text!r}; write ISO 8601, e.g. 2026-05-01T14:30:00+02:00,"
            " 2026-05-01T12:30Z, or 2026-05-01T14:30 (local time)"
        ) from None
    return when.timestamp()  # a naive datetime is local time


def parse_resources(text: str | None) -> dict[str, int] | None:
    """``name=amount,...`` (e.g. ``gpu=1,mem=4``); None when not given."""
    if text is None:
        return None
    resources: dict[str, int] = {}
    for part in text.split(","):
        item = part.strip()
        if not item:
            continue
        name, sep, amount = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--resources: {item!r} must be written name=amount, e.g. gpu=1,mem=4")
        try:
            count = int(amount)
        except ValueError:
            count = 0
        if count < 1:
            raise UsageError(
                f"--resources: the amount of {name!r} must be an integer >= 1, got {amount!r}"
            )
        resources[name] = count
    if not resources:
        raise UsageError(f"--resources: no resource in {text!r}; write e.g. gpu=1,mem=4")
    return resources


def _payload_data(text: str) -> dict[str, Any]:
    try:
        value: Any = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--payload is not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(value, dict):
        raise UsageError(
            f'--payload must be a JSON object such as \'{{"path": "a.jpg"}}\', '
            f"got a JSON {type(value).__name__}"
        )
    return value


# -- learning the job type -------------------------------------------------------------------


def _is_app(obj: object) -> bool:
    if isinstance(obj, Scheduler | Worker | Domain):
        return True
    return isinstance(obj, list | tuple) and bool(obj) and all(isinstance(d, Domain) for d in obj)


def app_types(spec: str) -> dict[str, JobType[Any, Any]]:
    """The job types of the app ``--app`` names, by `domain::name`."""
    app = load_object(
        spec,
        default_attrs=("scheduler", "worker", "domains", "app"),
        accept=_is_app,
        what="a Scheduler, a Worker, a Domain or a list of Domains",
    )
    if isinstance(app, Scheduler | Worker):
        return dict(app.types)
    domains = [app] if isinstance(app, Domain) else list(cast(Iterable[Domain], app))
    return {t.type: t for d in domains for t in d.jobs.values()}


def _unknown(job_type: str, known: Iterable[str], where: str) -> UsageError:
    names = sorted(known)
    if not names:
        return UsageError(
            f"{where} has no record of job type {job_type!r}, nor of any other: {NO_RECORD_HINT}"
        )
    return UsageError(
        f"unknown job type {job_type!r} in {where}; known types: {', '.join(names)}"
        f" (a type missing here: {NO_RECORD_HINT})"
    )


def _settings(record: NewJobType) -> dict[str, Any]:
    try:
        settings = json.loads(record.settings)
    except ValueError:
        settings = None
    if not isinstance(settings, dict):
        raise CLIError(f"job type {record.type}: its recorded settings are not a JSON object")
    return settings


def _shape(record: NewJobType) -> Shape:
    try:
        return shape_from_description(json.loads(record.payload))
    except ValueError as exc:
        raise CLIError(
            f"job type {record.type}: its recorded payload description cannot be read: {exc}"
        ) from None


# -- submit ----------------------------------------------------------------------------------


async def cmd_submit(args: argparse.Namespace, out: Output) -> int:
    """Submit a job straight to the store, checked against its job type's recorded fields."""
    _, type_name = parse_job_type(args.type)
    data = _payload_data(args.payload)
    options = _Options(args)
    local = app_types(args.app) if args.app is not None else None
    async with opened(args) as store:
        if local is not None:
            if type_name not in local:
                raise _unknown(type_name, local, f"app {args.app!r}")
            record = catalog([local[type_name]], "cli")[0]
        else:
            records = {r.type: r for r in await store.job_types()}
            if type_name not in records:
                raise _unknown(type_name, records, f"store {store.url}")
            found = records[type_name]
            record = NewJobType(
                found.type,
                found.domain,
                found.name,
                found.payload,
                found.settings,
                found.recorded_by,
            )
        job = _build(record, data, options, local)
        result = await _submit(store, job)
    duplicate = isinstance(result, Duplicate)
    if out.as_json:
        out.json(
            {
                "id": result.id,
                "type": type_name,
                "duplicate": duplicate,
                "replaced": isinstance(result, Submitted) and result.replaced,
                "priority": job.priority,
                "max_attempts": job.max_attempts,
            }
        )
    elif duplicate:
        out.print(Text(f"duplicate: job {result.id} already holds key {job.key!r}", style="yellow"))
    elif result.replaced:
        out.print(
            Text(
                f"debounced: job {result.id} (waiting, key {job.key!r}) takes this payload and"
                f" runs {render.when(job.run_at)}",
                style="green",
            )
        )
    else:
        out.print(
            Text(
                f"submitted job {result.id} ({type_name}, priority {job.priority},"
                f" {job.max_attempts} attempt(s))",
                style="green",
            )
        )
        if job.flow_key is None and _settings(record).get("concurrency_key"):
            out.print(
                Text(
                    f"note: {type_name} takes its concurrency key from its payload in the app's"
                    " code; this job has none, so no max_per_key holds it (pass --app to"
                    " derive it)",
                    style="yellow",
                )
            )
        if job.key is None and _settings(record).get("key"):
            out.print(
                Text(
                    f"note: {type_name} derives a dedup key from its payload in the app's code;"
                    " this job has none (pass --key, or --app to derive it)",
                    style="yellow",
                )
            )
    return 0


async def _submit(store: Store, job: NewJob) -> Any:
    try:
        (result,) = await store.submit([job])
    except UnknownJobError as exc:
        raise CLIError(f"submit {job.type}: {exc}") from None
    return result


class _Options:
    """The submit options given on the command line, each checked (None: not given)."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.priority = parse_priority(args.priority)
        if args.delay is not None and args.run_at is not None:
            raise UsageError(
                f"give --delay or --run-at, not both (--delay {args.delay}, --run-at {args.run_at})"
            )
        self.run_at: float | None = None
        if args.delay is not None:
            self.run_at = time.time() + parse_duration(args.delay, option="--delay")
        elif args.run_at is not None:
            self.run_at = parse_run_at(args.run_at)
        self.ttl: float | None = None
        if args.ttl is not None:
            self.ttl = parse_duration(args.ttl, option="--ttl")
            if self.ttl <= 0:
                raise UsageError(f"--ttl must be a duration > 0, got {args.ttl!r}")
        if args.key is not None and not args.key:
            raise UsageError("--key must not be empty")
        self.key: str | None = args.key
        self.debounce = _period(args.debounce, "--debounce")
        self.throttle = _period(args.throttle, "--throttle")
        self.tags = parse_tags(args.tags)
        self.resources = parse_resources(args.resources)
        self.depends_on = tuple(parse_job_id(p) for p in parse_tags(args.depends_on))
        self.max_attempts = (
            None
            if args.max_attempts is None
            else parse_positive_int(args.max_attempts, option="--max-attempts")
        )


def _period(text: str | None, option: str) -> float | None:
    """A duration > 0 (``--debounce``, ``--throttle``), or None when not given."""
    if text is None:
        return None
    value = parse_duration(text, option=option)
    if value <= 0:
        raise UsageError(f"{option} must be a duration > 0, got {text!r}")
    return value


def _flow(options: _Options, key: str | None) -> tuple[float | None, float | None]:
    """(debounce, throttle), with the rules of `Scheduler.submit` in the options' words."""
    debounce, throttle = options.debounce, options.throttle
    if debounce is None and throttle is None:
        return None, None
    if debounce is not None and throttle is not None:
        raise UsageError("give --debounce or --throttle, not both")
    option = "--debounce" if debounce is not None else "--throttle"
    if key is None:
        raise UsageError(
            f"{option} needs a dedup key: pass --key (or --app, to derive the job type's key)"
        )
    if debounce is not None and options.run_at is not None:
        raise UsageError("--debounce sets the run time: give it without --delay or --run-at")
    if debounce is not None and options.depends_on:
        raise UsageError("--debounce takes no --depends-on")
    return debounce, throttle


def _build(
    record: NewJobType,
    data: dict[str, Any],
    options: _Options,
    local: dict[str, JobType[Any, Any]] | None,
) -> NewJob:
    """The row to insert: the payload checked against the type's fields, its settings applied."""
    shape = _shape(record)
    try:
        shape.check(data, True)
    except Mismatch as exc:
        raise UsageError(f"--payload does not fit {record.type}: {exc.at('payload')}") from None
    try:
        payload = canonical_json(data)
    except PayloadError as exc:
        raise UsageError(f"--payload: {exc}") from None
    settings = _settings(record)
    key = options.key
    if key is None and local is not None and local[record.type].key is not None:
        job_type = local[record.type]
        try:  # the key the application would derive from this payload
            key = key_of(job_type, decode_payload(payload, job_type.payload_type), None, where="")
        except (ConfigError, PayloadError) as exc:
            raise UsageError(f"--payload: {exc}") from None
    debounce, throttle = _flow(options, key)
    priority = options.priority
    if priority is None:
        priority = int(settings.get("priority", 10))
    ttl = options.ttl if options.ttl is not None else settings.get("ttl")
    run_at = options.run_at if debounce is None else time.time() + debounce
    start = run_at if run_at is not None else time.time()
    tags = tuple(sorted(set(settings.get("tags") or ()) | set(options.tags)))
    resources = options.resources
    if resources is None:
        resources = {str(k): int(v) for k, v in (settings.get("resources") or {}).items()}
    max_attempts = options.max_attempts or int(settings.get("max_attempts", 1))
    rate_key, cost = _rates(record, payload, local)
    extra: dict[str, Any] = {"rate_key": rate_key, "cost": cost}
    if "max_reclaims" in settings:
        extra["max_reclaims"] = int(settings["max_reclaims"])
    return NewJob(
        type=record.type,
        domain=record.domain,
        payload=payload,
        priority=priority,
        run_at=run_at,
        key=key,
        depends_on=options.depends_on,
        tags=tags,
        resources=resources,
        expires_at=None if ttl is None else start + float(ttl),
        max_attempts=max_attempts,
        debounce=debounce,
        throttle=throttle,
        **extra,
    )


def _rates(
    record: NewJobType, payload: str, local: dict[str, JobType[Any, Any]] | None
) -> tuple[str | None, int]:
    """The job's rate key and cost: as the app's code derives them, or from the recorded
    settings (refused if they depend on the payload and the code is not at hand)."""
    try:
        if local is not None:
            job_type = local[record.type]
            return submitted(job_type, decode_payload(payload, job_type.payload_type), where="")
        return recorded_rate_fields(_settings(record), record.type)
    except (ConfigError, PayloadError) as exc:
        raise UsageError(f"--payload: {exc}".replace(": : ", ": ")) from None


# -- types -----------------------------------------------------------------------------------


def _payload_lines(description: Any) -> list[str]:
    """The payload's class and one line per field, ``name: type = default``."""
    try:
        shape = shape_from_description(description)
    except ValueError:
        return ["payload: (a description this version cannot read)"]
    if not isinstance(shape, ObjectShape):
        if shape.text() == "dict[str, Any]":
            return ["payload: any JSON object"]
        return [f"payload: {shape.text()}"]
    lines = [f"payload: {shape.text()}" + ("" if shape.fields else " (no fields)")]
    for f in shape.fields:
        text = f"  {f.key}: {f.shape.text()}"
        if not f.required:
            text += " = ..." if f.default is attrs.NOTHING else f" = {json.dumps(f.default)}"
        lines.append(text)
    return lines


def _settings_text(settings: dict[str, Any]) -> str:
    parts = [f"priority {settings.get('priority', '?')}"]
    parts.append(f"attempts {settings.get('max_attempts', '?')}")
    for name in ("timeout", "ttl"):
        if settings.get(name) is not None:
            parts.append(f"{name} {render.seconds(float(settings[name]))}")
    if settings.get("tags"):
        parts.append(f"tags {','.join(settings['tags'])}")
    if settings.get("resources"):
        parts.append("resources " + ",".join(f"{k}={v}" for k, v in settings["resources"].items()))
    if settings.get("max_concurrency"):
        parts.append(f"max {settings['max_concurrency']} at once")
    if settings.get("key"):
        parts.append("dedup key from payload")
    for limit in settings.get("rate_limits") or ():
        keyed = " per key" if limit.get("keyed") else ""
        parts.append(f"rate {limit['name']} {limit['count']} per {limit['per']:g} s{keyed}")
    if settings.get("concurrency_key"):
        cap = settings.get("max_per_key")
        parts.append("concurrency key from payload" + (f" (max {cap} per key)" if cap else ""))
    return "settings: " + ", ".join(parts)


async def cmd_types(args: argparse.Namespace, out: Output) -> int:
    """List the recorded job types: payload fields, settings, who recorded them and when."""
    async with opened(args) as store:
        records = await store.job_types()
        url = store.url
    if out.as_json:
        out.json(
            [
                {
                    "type": r.type,
                    "domain": r.domain,
                    "name": r.name,
                    "payload": render.decode(r.payload),
                    "settings": render.decode(r.settings),
                    "recorded_by": r.recorded_by,
                    "recorded_at": r.recorded_at,
                }
                for r in records
            ]
        )
        return 0
    if not records:
        out.print(
            Text(
                f"no job types recorded in {url}: a worker records its app's job types when it"
                " starts",
                style="dim",
            )
        )
        return 0
    out.print(Text(f"{len(records)} job type(s) in {url}", style="bold"))
    for r in records:
        settings = render.decode(r.settings)
        if not isinstance(settings, dict):
            settings = {}
        out.print(
            Text(r.type, style="bold cyan")
            + Text(f"  recorded {render.when(r.recorded_at)} by {r.recorded_by}", style="dim")
        )
        for line in [*_payload_lines(render.decode(r.payload)), _settings_text(settings)]:
            out.print(Text(f"  {line}"))
    return 0
