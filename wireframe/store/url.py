"""Opening a store from a URL: `memory://`, `sqlite:///path.db` (or a bare path), `postgresql://`."""

from __future__ import annotations

import os

from wireframe.store.base import Store
from wireframe.store.errors import StoreURLError
from wireframe.store.memory import MemoryStore
from wireframe.store.sqlite import SqliteStore


def store_from_url(url: str | os.PathLike[str]) -> Store:
    """Build (without opening) the store a URL names; a bad URL is a StoreURLError naming it."""
    text = os.fspath(url)
    if not isinstance(text, str) or not text.strip():
        raise StoreURLError(f"store URL must be a non-empty string, got {url!r}")
    if text == "memory://" or text == "memory:":
        return MemoryStore()
    if text.startswith("sqlite://"):
        path = text.removeprefix("sqlite://")
        if not path.startswith("/") or path == "/":
            raise StoreURLError(
                f"store URL {text!r}: write sqlite:///relative/path.db or sqlite:////abs/path.db"
            )
        return SqliteStore(path[1:])
    if text.startswith(("postgresql://", "postgres://")):
        from wireframe.store.postgres import PostgresStore

        return PostgresStore(text)
    if "://" in text:
        scheme = text.split("://", 1)[0]
        raise StoreURLError(
            f"store URL {text!r}: unknown scheme {scheme!r}; use memory://, sqlite:///path.db, "
            f"postgresql://... or a bare file path"
        )
    return SqliteStore(text)
