"""How a worker stops: how long its running jobs may take before the rest are handed back."""

from __future__ import annotations

import attrs

from wireframe.scheduler._numbers import seconds as check_seconds


@attrs.frozen
class ShutdownMode:
    """How a worker stops: let running jobs finish for `seconds`, then hand the rest back.

    The drain never outlasts the service's graceful timeout: the worker hands back the jobs
    still running (cancelled, returned to `pending` with their durable checkpoints, no attempt
    spent) early enough to write that before the service would cancel it.
    """

    seconds: float

    @classmethod
    def graceful(cls, seconds: float = 20.0) -> ShutdownMode:
        """Stop claiming; give running jobs up to `seconds` to finish, then hand back the rest."""
        return cls(check_seconds(seconds, "ShutdownMode.graceful(seconds)", zero=True))

    @classmethod
    def hard(cls) -> ShutdownMode:
        """Cancel running handlers at once and hand their jobs back to pending."""
        return cls(0.0)
