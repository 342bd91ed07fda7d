"""Line plots as SVG geometry, computed on the server (no plotting library, no script).

A template draws a `Plot` with `<polyline>`s; the colours are CSS classes, so the page needs
no inline style (the Content-Security-Policy forbids it).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

WIDTH = 320
HEIGHT = 90
PAD = 4


@attrs.frozen
class Line:
    """One series: its CSS class, its label, and its points as `x,y x,y ...`."""

    css: str
    label: str
    points: str
    last: float


@attrs.frozen
class Plot:
    """A plot: title, the top of the y axis, its lines and the time span shown (seconds)."""

    title: str
    top: float
    lines: tuple[Line, ...]
    span: float
    width: int = WIDTH
    height: int = HEIGHT


def nice_top(value: float) -> float:
    """A round number at least `value` (1, 2, 5 times a power of ten; 1 for nothing)."""
    if value <= 1:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale  # pragma: no cover - the loop always returns


def plot(
    title: str, times: Sequence[float], series: Sequence[tuple[str, str, Sequence[float]]]
) -> Plot:
    """A plot of `series` ((css class, label, values) each) over `times` (UNIX seconds)."""
    top = nice_top(max((max(values, default=0.0) for _, _, values in series), default=0.0))
    start = times[0] if times else 0.0
    span = (times[-1] - start) if len(times) > 1 else 0.0
    lines = []
    for css, label, values in series:
        points = []
        for at, value in zip(times, values, strict=True):
            x = PAD + (WIDTH - 2 * PAD) * ((at - start) / span if span else 1.0)
            y = HEIGHT - PAD - (HEIGHT - 2 * PAD) * (value / top)
            points.append(f"{x:.1f},{y:.1f}")
        lines.append(Line(css, label, " ".join(points), values[-1] if values else 0.0))
    return Plot(title, top, tuple(lines), span)
