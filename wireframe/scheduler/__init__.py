"""Job scheduler: domains of typed jobs, the Scheduler and Worker tasks, and JobContext."""

from __future__ import annotations

from wireframe.durable import ChildHandle, NonDeterminismError
from wireframe.scheduler.clock import Clock
from wireframe.scheduler.context import JobContext
from wireframe.scheduler.domain import Domain, Handler, JobType
from wireframe.scheduler.errors import (
    ChildCancelled,
    ChildFailed,
    ConfigError,
    DeferTimeout,
    EventTimeout,
    HandBackError,
    JobFailed,
    JobNotFound,
    PayloadError,
    Permanent,
    SchedulerError,
)
from wireframe.scheduler.events import (
    EventBus,
    EventsLagged,
    JobBlocked,
    JobCancelled,
    JobCompleted,
    JobDependencyFailed,
    JobExpired,
    JobFailedEvent,
    JobPreempted,
    JobProgress,
    JobRetrying,
    JobStarted,
    JobSubmitted,
    JobSuspended,
    JobUnblocked,
    JobWaiting,
    ScheduleSkipped,
)
from wireframe.scheduler.metrics import SchedulerMetrics, scheduler_metrics
from wireframe.scheduler.priority import Priority
from wireframe.scheduler.recurring import Cron, Every, Recurrence
from wireframe.scheduler.retry import Retry
from wireframe.scheduler.scheduler import Scheduler
from wireframe.scheduler.shutdown import ShutdownMode
from wireframe.scheduler.snapshot import RunningJob, Snapshot
from wireframe.scheduler.worker import Worker
from wireframe.store import Duplicate, JobRecord, JobState, Overlap, ScheduleRecord, Submitted

__all__ = [
    "ChildCancelled",
    "ChildFailed",
    "ChildHandle",
    "Clock",
    "ConfigError",
    "Cron",
    "DeferTimeout",
    "Domain",
    "Duplicate",
    "EventBus",
    "EventTimeout",
    "EventsLagged",
    "Every",
    "HandBackError",
    "Handler",
    "JobBlocked",
    "JobCancelled",
    "JobCompleted",
    "JobContext",
    "JobDependencyFailed",
    "JobExpired",
    "JobFailed",
    "JobFailedEvent",
    "JobNotFound",
    "JobPreempted",
    "JobProgress",
    "JobRecord",
    "JobRetrying",
    "JobStarted",
    "JobState",
    "JobSubmitted",
    "JobSuspended",
    "JobType",
    "JobUnblocked",
    "JobWaiting",
    "NonDeterminismError",
    "Overlap",
    "PayloadError",
    "Permanent",
    "Priority",
    "Recurrence",
    "Retry",
    "RunningJob",
    "ScheduleRecord",
    "ScheduleSkipped",
    "Scheduler",
    "SchedulerError",
    "SchedulerMetrics",
    "ShutdownMode",
    "Snapshot",
    "Submitted",
    "Worker",
    "scheduler_metrics",
]
