"""The dashboard's guards: the action token, the Host header, and the redacted store URL."""

from __future__ import annotations

import hmac
import ipaddress
import os
import re

from wireframe.store.postgres import redact

TOKEN_ENV = "WIREFRAME_DASHBOARD_TOKEN"
"""Environment variable read for the action token when none is passed."""

TOKEN_HEADER = "x-wireframe-token"
"""The request header that carries the action token (or a form field named ``token``)."""

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def token_from(value: str | None, *, environ: bool = True) -> str | None:
    """The action token: `value`, else ``$WIREFRAME_DASHBOARD_TOKEN``; None (read-only) if
    neither is set. An empty or blank token is refused: it would let anyone act."""
    token = value if value is not None else (os.environ.get(TOKEN_ENV) if environ else None)
    if token is None:
        return None
    if not token.strip():
        raise ValueError(f"dashboard token must not be empty (--token or ${TOKEN_ENV})")
    return token


def token_matches(expected: str | None, given: str | None) -> bool:
    """True if an action may run: a token is configured and `given` equals it (constant time)."""
    if expected is None or given is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def is_loopback(host: str) -> bool:
    """True for names and addresses of this machine only."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(bound: str, header: str | None) -> bool:
    """Whether a request's Host header may be answered: when the dashboard listens on loopback
    only, the Host must name loopback too (a page elsewhere that rebinds its DNS name to
    127.0.0.1 would otherwise read the dashboard)."""
    if not is_loopback(bound):
        return True
    if not header:
        return False
    name = header.rsplit(":", 1)[0] if not header.endswith("]") else header
    if header.startswith("["):
        name = header.split("]", 1)[0] + "]"
    return is_loopback(name)


_PASSWORD_PARAM = re.compile(r"(?i)\b(password=)[^&\s]*")


def safe_url(url: str) -> str:
    """A store URL fit to show: its password (in the user part, or a ``password=`` parameter)
    replaced by ``***``."""
    return _PASSWORD_PARAM.sub(r"\1***", redact(url))


__all__ = [
    "TOKEN_ENV",
    "TOKEN_HEADER",
    "host_allowed",
    "is_loopback",
    "safe_url",
    "token_from",
    "token_matches",
]
