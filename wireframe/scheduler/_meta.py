"""A job's metadata, checked: the one rule shared by submits, spawns and the submit middleware.

A leaf module (`submission` re-exports both names), so the job context and the middleware chain
check metadata without importing the submission machinery and the job types behind it.
"""

from __future__ import annotations

from collections.abc import Mapping

from wireframe.scheduler.errors import ConfigError

META_MAX_CHARS = 8192
"""The most characters a job's metadata may hold, keys and values together."""


def check_meta(meta: object, *, where: str) -> dict[str, str]:
    """`meta` as a new dict of non-empty str keys to str values; ConfigError naming the bad one."""
    if not isinstance(meta, Mapping):
        raise ConfigError(f"{where} must be a mapping of str to str, got {meta!r:.100}")
    checked: dict[str, str] = {}
    size = 0
    for name, value in meta.items():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}: key {name!r:.100} is not a non-empty str")
        if not isinstance(value, str):
            raise ConfigError(f"{where}: value of {name!r} must be a str, got {value!r:.100}")
        size += len(name) + len(value)
        checked[name] = value
    if size > META_MAX_CHARS:
        raise ConfigError(
            f"{where}: {size} characters of keys and values; at most {META_MAX_CHARS} are kept"
        )
    return checked
