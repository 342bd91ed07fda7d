"""Type variables of the typed API: a job type's payload and its handler's result.

Both default to `Any`, so a call that cannot tell them (a submit by type name) is typed
`Submitted[Any]` rather than failing, and a bare `Submitted` annotation means `Submitted[Any]`.
"""

from __future__ import annotations

import sys
from typing import Any

if sys.version_info >= (3, 13):
    from typing import TypeVar
else:
    from typing_extensions import TypeVar

PayloadT = TypeVar("PayloadT", default=Any)
"""The payload type a job type's handler takes."""

ResultT = TypeVar("ResultT", default=Any)
"""The type a job type's handler returns."""
