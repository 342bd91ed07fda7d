"""wireframe: long-running async services built from tasks, with a durable job scheduler."""

from __future__ import annotations

from wireframe.scheduler import *  # noqa: F403
from wireframe.scheduler import __all__ as _scheduler_all
from wireframe.service import *  # noqa: F403
from wireframe.service import __all__ as _service_all

__version__ = "0.1.0.dev0"

__all__ = ["__version__", *_service_all, *_scheduler_all]
