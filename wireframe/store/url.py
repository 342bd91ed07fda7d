"""Opening a store from a URL: `memory://`, `sqlite:///path.db` (or a bare path), `postgresql://`."""

from __future__ import annotations

import os

from wireframe.store.base import Store
from wireframe.store.errors import NoStoreError, StoreURLError
from wireframe.store.memory import MemoryStore
from wireframe.store.sqlite import SqliteStore


def store_from_url(url: str | os.PathLike[str], *, create: bool = True) -> Store:
    """Build (without opening) the store a URL names; a bad URL is a StoreURLError naming it.

    With `create=False` the store's `open()` raises NoStoreError where there is no store yet
    (a missing SQLite file, a PostgreSQL schema without the tables) instead of creating one;
    `memory://` is never there before it is opened.
    """
    text = os.fspath(url)
    if not isinstance(text, str) or not text.strip():
        raise StoreURLError(f"store URL must be a non-empty string, got {url!r}")
    if text == "memory://" or text == "memory:":
        if not create:
            raise NoStoreError(
                f"no store at {text} (a memory store lives in the process that opened it)"
            )
        return MemoryStore()
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/") or path == "/":
            raise StoreURLError(
                f"store URL {text!r}: write sqlite:///relative/path.db or sqlite:////abs/path.db"
            )
        return SqliteStore(path[1:], create=create)
    if text.startswith(("postgresql://", "postgres://")):
        from wireframe.store.postgres import PostgresStore

        return PostgresStore(text, create=create)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreURLError(
            f"store URL {text!r}: unknown scheme {scheme!r}; use memory://, sqlite:///path.db, "
            f"postgresql://... or a bare file path"
        )
    return SqliteStore(text, create=create)
