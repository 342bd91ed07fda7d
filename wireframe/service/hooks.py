"""Shutdown hooks: callables run after every task has stopped, in the order added."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import attrs

from wireframe.service._validate import check_id, check_timeout
from wireframe.service.errors import ServiceConfigError

HookFn = Callable[[], Awaitable[None] | None]
"""A hook body: an async function (or a plain function) taking no argument."""


def _hook_id(value: object) -> str:
    return check_id("shutdown hook id", value)


def _hook_timeout(value: object) -> float:
    return check_timeout("shutdown hook timeout", value)


@attrs.frozen
class ShutdownHook:
    """A named callable run at shutdown, limited to ``timeout`` seconds (default 30)."""

    id: str = attrs.field(converter=_hook_id)
    fn: HookFn = attrs.field()
    timeout: float = attrs.field(default=30.0, converter=_hook_timeout)

    @fn.validator
    def _check_fn(self, _attribute: attrs.Attribute[HookFn], value: HookFn) -> None:
        if not callable(value):
            raise ServiceConfigError(
                f"shutdown hook {self.id!r}: fn must be callable, got {value!r}"
            )
