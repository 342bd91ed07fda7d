"""Service lifecycle: tasks, the precondition barrier, the stop signal, shutdown and wiring."""

from __future__ import annotations

from wireframe.service.errors import (
    DuplicateResourceError,
    MissingResourceError,
    ResourceCloseFailedError,
    ResourceCloseTimeoutError,
    ServiceConfigError,
    ServiceError,
    ServiceFailure,
    ShutdownHookFailedError,
    ShutdownHookTimeoutError,
    TaskFailedError,
    TaskNotStoppedError,
    WiringError,
)
from wireframe.service.health import HealthServer
from wireframe.service.hooks import ShutdownHook
from wireframe.service.kinds import TaskKind
from wireframe.service.metrics import MetricFamily, MetricsRegistry
from wireframe.service.restart import Backoff, Restart, RestartOn
from wireframe.service.service import Service
from wireframe.service.status import (
    HookStatus,
    ResourceStatus,
    ServicePhase,
    ServiceStatus,
    TaskState,
    TaskStatus,
)
from wireframe.service.stop import StopReason, StopReasonKind, StopReceiver
from wireframe.service.task import (
    OneshotTask,
    Precondition,
    Task,
    UnconstrainedOneshotTask,
    UnconstrainedTask,
)
from wireframe.service.wiring import ServiceContext, WiringLayer

__all__ = [
    "Backoff",
    "DuplicateResourceError",
    "HealthServer",
    "HookStatus",
    "MetricFamily",
    "MetricsRegistry",
    "MissingResourceError",
    "OneshotTask",
    "Precondition",
    "ResourceCloseFailedError",
    "ResourceCloseTimeoutError",
    "ResourceStatus",
    "Restart",
    "RestartOn",
    "Service",
    "ServiceConfigError",
    "ServiceContext",
    "ServiceError",
    "ServiceFailure",
    "ServicePhase",
    "ServiceStatus",
    "ShutdownHook",
    "ShutdownHookFailedError",
    "ShutdownHookTimeoutError",
    "StopReason",
    "StopReasonKind",
    "StopReceiver",
    "Task",
    "TaskFailedError",
    "TaskKind",
    "TaskNotStoppedError",
    "TaskState",
    "TaskStatus",
    "UnconstrainedOneshotTask",
    "UnconstrainedTask",
    "WiringError",
    "WiringLayer",
]
