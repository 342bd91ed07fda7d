"""Exceptions of the service lifecycle: bad configuration, wiring errors and run failures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from wireframe.service.kinds import TaskKind
    from wireframe.service.stop import StopReason


class ServiceConfigError(ValueError):
    """A service was built wrongly; raised before any task starts."""


class WiringError(ServiceConfigError):
    """Wiring failed: ``layer`` names the (first) failing layer, ``errors`` every failing one.

    A single failing layer raises its own error (``errors`` is just that error); several raise
    one ``WiringError`` (see ``combine``) whose message names each layer and its error.
    """

    def __init__(self, layer: str, message: str) -> None:
        super().__init__(f"wiring layer {layer!r}: {message}")
        self.layer = layer
        self.errors: tuple[WiringError, ...] = (self,)

    @property
    def layers(self) -> tuple[str, ...]:
        """The name of every failing layer, in the order the layers were added."""
        return tuple(e.layer for e in self.errors)

    @classmethod
    def combine(cls, errors: Sequence[WiringError]) -> WiringError:
        """One error for the failing layers, in order: the error itself if only one failed.

        Each error keeps its own ``__cause__`` (what the layer raised). A missing resource in a
        layer after an earlier failure may only follow from it (the failed layer may not have
        provided it): the combined message says so, and the error is kept in its place.
        """
        errors = [each for error in errors for each in error.errors]  # flat, if combined before
        if not errors:
            raise ValueError("WiringError.combine needs at least one error")
        if len(errors) == 1:
            return errors[0]
        parts: list[str] = []
        for i, error in enumerate(errors):
            text = str(error)
            if isinstance(error, MissingResourceError):
                text += _after_failures(errors[:i])
            parts.append(text)
        combined = WiringError(errors[0].layer, "")
        combined.args = (f"{len(errors)} wiring layers failed: " + "; ".join(parts),)
        combined.errors = tuple(errors)
        return combined


class MissingResourceError(WiringError, LookupError):
    """A layer asked for a resource type that no earlier layer provided."""

    def __init__(self, layer: str, resource_type: type, available: Sequence[type]) -> None:
        names = ", ".join(sorted(_type_name(t) for t in available)) or "none"
        super().__init__(
            layer,
            f"no resource of type {_type_name(resource_type)} was provided (available: {names})",
        )
        self.resource_type = resource_type


class DuplicateResourceError(WiringError):
    """A layer provided a resource type that was already provided."""

    def __init__(self, layer: str, resource_type: type, first_layer: str) -> None:
        super().__init__(
            layer,
            f"resource type {_type_name(resource_type)} is already provided "
            f"by layer {first_layer!r}",
        )
        self.resource_type = resource_type
        self.first_layer = first_layer


class ServiceFailure(Exception):
    """One entry of a ServiceError: something named ``id`` failed or did not stop in time."""

    def __init__(self, id: str, message: str) -> None:
        super().__init__(message)
        self.id = id


class TaskFailedError(ServiceFailure):
    """A task raised; the original exception is ``error`` (and ``__cause__``)."""

    def __init__(
        self, id: str, kind: TaskKind, error: BaseException, *, description: str | None = None
    ) -> None:
        """``description`` says what went wrong in the message (default: ``repr(error)``)."""
        super().__init__(id, f"{kind.value} {id!r} failed: {description or repr(error)}")
        self.kind = kind
        self.error = error
        self.__cause__ = error


class TaskNotStoppedError(ServiceFailure):
    """A task was still running after the graceful timeout (or a forced stop) and was cancelled."""

    def __init__(self, id: str, kind: TaskKind, timeout: float, forced: bool) -> None:
        if forced:
            message = f"{kind.value} {id!r} was cancelled by a forced stop"
        else:
            message = f"{kind.value} {id!r} did not stop within {timeout:g} s and was cancelled"
        super().__init__(id, message)
        self.kind = kind
        self.timeout = timeout
        self.forced = forced


class ShutdownHookFailedError(ServiceFailure):
    """A shutdown hook raised; the original exception is ``error`` (and ``__cause__``)."""

    def __init__(self, id: str, error: BaseException, *, description: str | None = None) -> None:
        """``description`` says what went wrong in the message (default: ``repr(error)``)."""
        super().__init__(id, f"shutdown hook {id!r} failed: {description or repr(error)}")
        self.error = error
        self.__cause__ = error


class ShutdownHookTimeoutError(ServiceFailure):
    """A shutdown hook overran its timeout, or was cut short or skipped by a forced stop."""

    def __init__(self, id: str, timeout: float, forced: bool) -> None:
        if forced:
            message = f"shutdown hook {id!r} was cancelled or skipped by a forced stop"
        else:
            message = f"shutdown hook {id!r} did not finish within {timeout:g} s"
        super().__init__(id, message)
        self.timeout = timeout
        self.forced = forced


class ResourceCloseFailedError(ServiceFailure):
    """A managed resource raised while closing; the original exception is ``error``."""

    def __init__(
        self, id: str, layer: str, error: BaseException, *, description: str | None = None
    ) -> None:
        """``description`` says what went wrong in the message (default: ``repr(error)``)."""
        super().__init__(
            id,
            f"resource {id!r} of wiring layer {layer!r} failed to close: "
            f"{description or repr(error)}",
        )
        self.layer = layer
        self.error = error
        self.__cause__ = error


class ResourceCloseTimeoutError(ServiceFailure):
    """A managed resource did not close within its timeout and was abandoned."""

    def __init__(self, id: str, layer: str, timeout: float) -> None:
        super().__init__(
            id, f"resource {id!r} of wiring layer {layer!r} did not close within {timeout:g} s"
        )
        self.layer = layer
        self.timeout = timeout


class ServiceError(ExceptionGroup[ServiceFailure]):
    """The service stopped with failures; each member names one task, hook or resource."""

    stop_reason: StopReason | None

    def __new__(
        cls,
        message: str,
        exceptions: Sequence[ServiceFailure],
        stop_reason: StopReason | None = None,
    ) -> Self:
        """Create the group; ``stop_reason`` says why the service stopped."""
        self = super().__new__(cls, message, exceptions)
        self.stop_reason = stop_reason
        return self

    def __init__(
        self,
        message: str,
        exceptions: Sequence[ServiceFailure],
        stop_reason: StopReason | None = None,
    ) -> None:
        super().__init__(message, exceptions)

    def derive(self, excs: Sequence[ServiceFailure]) -> ServiceError:  # type: ignore[override]
        """Build a group of the same kind over a subset (used by ``split``/``except*``)."""
        return ServiceError(self.message, excs, self.stop_reason)

    @property
    def failed_ids(self) -> tuple[str, ...]:
        """The ids of every task, hook and resource named by this error, in report order."""
        return tuple(e.id for e in self.exceptions if isinstance(e, ServiceFailure))

    @property
    def exit_code(self) -> int:
        """The process exit code: 1, or what the first task or hook ending the process asked.

        A task or hook that raised ``SystemExit(n)`` with a non-zero int n gives n, and one
        that raised ``KeyboardInterrupt`` gives 130 (128 + SIGINT).
        """
        for failure in self.exceptions:
            cause = getattr(failure, "error", None)
            if isinstance(cause, KeyboardInterrupt):
                return 130
            if isinstance(cause, SystemExit) and type(cause.code) is int and cause.code != 0:
                return cause.code
        return 1


def _after_failures(earlier: Sequence[WiringError]) -> str:
    if not earlier:
        return ""
    names = ", ".join(repr(e.layer) for e in earlier)
    return f" (perhaps because {'layer' if len(earlier) == 1 else 'layers'} {names} failed first)"


def _type_name(t: type) -> str:
    return f"{t.__module__}.{t.__qualname__}" if t.__module__ != "builtins" else t.__qualname__
