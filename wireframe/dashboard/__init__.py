"""The web dashboard: `wireframe dashboard --store URL`, or a `DashboardServer` task beside a
`HealthServer`. Needs the ``dashboard`` extra (Jinja2): ``pip install 'wireframe[dashboard]'``.
"""

from __future__ import annotations

from wireframe.dashboard.security import TOKEN_ENV
from wireframe.dashboard.server import DEFAULT_PORT, DashboardServer

__all__ = ["DEFAULT_PORT", "TOKEN_ENV", "DashboardServer"]
