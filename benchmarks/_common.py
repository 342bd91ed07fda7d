"""Shared helpers for the benchmarks: a no-op domain and store URLs in a temp dir."""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path

import attrs


@attrs.frozen
class Noop:
    n: int


def store_url(kind: str, tmp: str) -> str:
    """`memory`, `sqlite` (a fresh file in `tmp`) or a full URL."""
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{Path(tmp) / 'bench.db'}"
    return kind


def temp_dir() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="wireframe-bench-")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return (
        statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]
        if len(ordered) > 1
        else ordered[0]
    )
