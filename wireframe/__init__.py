"""wireframe: long-running async services built from tasks, with a durable job scheduler."""

from __future__ import annotations

__version__ = "0.1.0.dev0"
