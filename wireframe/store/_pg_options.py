"""The PostgreSQL store's URL and connection options: parsing, validation, libpq settings.

A store URL is a libpq URL plus the store's own query parameters (`schema`, and the timeouts in
`TIMEOUTS`), which are taken out before the rest reaches libpq. A keyword argument of the store
overrides the URL's value; the URL's overrides the default.
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import attrs

from wireframe.store.errors import StoreURLError

DEFAULT_SCHEMA = "wireframe"
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

TIMEOUTS: dict[str, float] = {
    "reconnect_timeout": 120.0,
    "idle_in_transaction_timeout": 60.0,
    "keepalive_timeout": 60.0,
}
"""The store's timeouts (seconds) settable in the URL or as keyword arguments, with defaults."""

_STORE_PARAMS = ("schema", *TIMEOUTS)

CONNECT_TIMEOUT = 10.0
"""Seconds the store waits for a connection by default (the URL's `connect_timeout` or the
`connect_timeout` keyword set it)."""


@attrs.frozen
class Timeouts:
    """How long the store waits for PostgreSQL, and how long PostgreSQL waits for the store.

    `reconnect_timeout`: an operation keeps retrying this long while the server is unreachable,
    then raises StoreError. `idle_in_transaction_timeout` (0: off): the server ends a store
    session that sits inside a transaction this long without sending anything (a process
    stopped, paused or cut off mid-transaction), which releases its row locks.
    `keepalive_timeout` (0: the system's defaults): a connection whose other end stops
    answering (a paused machine, a network partition) is dropped after about this long, by the
    client and by the server (TCP keepalives and TCP_USER_TIMEOUT).
    """

    reconnect_timeout: float = TIMEOUTS["reconnect_timeout"]
    idle_in_transaction_timeout: float = TIMEOUTS["idle_in_transaction_timeout"]
    keepalive_timeout: float = TIMEOUTS["keepalive_timeout"]


def redact(url: str) -> str:
    """The URL with its password replaced by `***`."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:***@{netloc[1]}"))


def _split(url: str) -> tuple[Any, list[tuple[str, str]]]:
    safe = redact(url)
    try:
        parts = urlsplit(url)
        _ = parts.port
    except ValueError as exc:
        raise StoreURLError(f"store URL {safe!r}: not a valid PostgreSQL URL ({exc})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise StoreURLError(f"store URL {safe!r}: expected postgresql://user@host:port/dbname")
    return parts, parse_qsl(parts.query, keep_blank_values=True)


def parse_url(url: str, schema_name: str | None) -> tuple[str, str]:
    """Split a store URL into (libpq conninfo URL without the store's parameters, schema)."""
    parts, query_items = _split(url)
    from_url = [v for k, v in query_items if k == "schema"]
    kept = [(k, v) for k, v in query_items if k not in _STORE_PARAMS]
    name = schema_name if schema_name is not None else (from_url[-1] if from_url else None)
    name = DEFAULT_SCHEMA if name is None else name
    if not isinstance(name, str) or not _SCHEMA_NAME.match(name):
        raise StoreURLError(
            f"store URL {redact(url)!r}: schema name {name!r} must be lowercase letters, digits "
            f"and underscores, starting with a letter or underscore (at most 63 characters)"
        )
    if name == "information_schema" or name.startswith("pg_"):
        # PostgreSQL's own schemas: pg_dump leaves them out, so every job would miss backups.
        raise StoreURLError(
            f"store URL {redact(url)!r}: schema name {name!r} is reserved by PostgreSQL "
            f"(information_schema and pg_*); choose another, e.g. {DEFAULT_SCHEMA!r}"
        )
    return urlunsplit(parts._replace(query=urlencode(kept))), name


def seconds(value: object, where: str) -> float:
    """`value` as a finite number of seconds >= 0, or a ValueError naming it and `where`."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{where} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{where} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


def timeouts(url: str, given: dict[str, float | None]) -> Timeouts:
    """The store's timeouts: keyword arguments (`given`, None: not given), the URL, defaults."""
    _, query_items = _split(url)
    values: dict[str, float] = {}
    for name, raw in query_items:
        if name in TIMEOUTS:
            try:
                values[name] = seconds(float(raw), name)
            except ValueError:
                raise StoreURLError(
                    f"store URL {redact(url)!r}: {name}={raw!r} must be a finite number of "
                    f"seconds >= 0"
                ) from None
    for name, value in given.items():
        if value is not None:
            values[name] = seconds(value, f"PostgresStore {name}")
    return Timeouts(**values)


def connect_timeout_of(url: str, given: float | None) -> float:
    """How long to wait for a connection: `given` (the keyword), else the URL's libpq
    `connect_timeout`, else CONNECT_TIMEOUT."""
    if given is not None:
        return seconds(given, "PostgresStore connect_timeout")
    _, query_items = _split(url)
    raw = dict(query_items).get("connect_timeout")
    if raw is None:
        return CONNECT_TIMEOUT
    try:
        value = seconds(float(raw), "connect_timeout")
    except ValueError:
        raise StoreURLError(
            f"store URL {redact(url)!r}: connect_timeout={raw!r} must be a whole number of "
            f"seconds >= 1"
        ) from None
    return max(value, 1.0)


def connect_kwargs(conninfo: str, limits: Timeouts, connect_timeout: float) -> dict[str, Any]:
    """Keyword arguments of `psycopg.connect` for a store connection.

    Server settings go in `options`, before the URL's own `options` (which may override them);
    the client's TCP settings only where the URL does not set them itself.
    """
    server = ["-c enable_bitmapscan=off"]
    # A queue table's statistics go stale within seconds (rows stream through `pending`); with
    # stale ones the planner picks bitmap scans that sort every pending row, where the partial
    # indexes' ordered scans read only what they need.
    idle_ms = round(limits.idle_in_transaction_timeout * 1000)
    server.append(f"-c idle_in_transaction_session_timeout={idle_ms}")
    client: dict[str, Any] = {}
    if limits.keepalive_timeout > 0:
        idle, interval, count = keepalive(limits.keepalive_timeout)
        user_ms = round(limits.keepalive_timeout * 1000)
        server += [
            f"-c tcp_keepalives_idle={idle}",
            f"-c tcp_keepalives_interval={interval}",
            f"-c tcp_keepalives_count={count}",
            f"-c tcp_user_timeout={user_ms}",
        ]
        client = {
            "keepalives": 1,
            "keepalives_idle": idle,
            "keepalives_interval": interval,
            "keepalives_count": count,
            "tcp_user_timeout": user_ms,
        }
    _, query_items = _split(conninfo)
    in_url = dict(query_items)
    options = " ".join([*server, in_url.get("options", "")]).strip()
    kwargs = {k: v for k, v in client.items() if k not in in_url}
    kwargs.update(connect_timeout=max(1, int(connect_timeout)), options=options)
    return kwargs


def keepalive(timeout: float) -> tuple[int, int, int]:
    """TCP keepalive (idle, interval, count) seconds that give up on a silent peer in ~timeout."""
    count = 3
    interval = max(1, round(timeout / 6))
    idle = max(1, round(timeout - count * interval))
    return idle, interval, count
