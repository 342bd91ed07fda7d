"""The restart bookkeeping of one supervised task: its backoff sequence and intensity window."""

from __future__ import annotations

from collections import deque

from wireframe.service.errors import ServiceConfigError
from wireframe.service.kinds import TaskKind
from wireframe.service.restart import Restart, RestartOn


def check_policy(task_id: str, kind: TaskKind, policy: object) -> Restart | None:
    """Return ``policy`` if a task of ``kind`` may use it, else raise naming the task."""
    if policy is None:
        return None
    if not isinstance(policy, Restart):
        raise ServiceConfigError(
            f"task {task_id!r}: restart must be a Restart (Restart.on_failure() or "
            f"Restart.always()) or None, got {policy!r}"
        )
    if kind is TaskKind.PRECONDITION and policy.on is RestartOn.ALWAYS:
        raise ServiceConfigError(
            f"task {task_id!r}: a precondition must pass once to release the barrier; "
            "Restart.always() would run it again after it passed (use Restart.on_failure())"
        )
    return policy


class Supervisor:
    """Decides whether, and how soon, a supervised task that ended is started again.

    The backoff sequence advances with each restart and starts over after a run that lasted
    the backoff's ``reset_after``. The intensity limit counts the restarts decided within the
    last ``within`` seconds: once ``max_restarts`` of them are in the window, the next ending
    is not restarted (it escalates).
    """

    __slots__ = ("_recent", "_streak", "exhausted", "policy", "restarts")

    def __init__(self, policy: Restart) -> None:
        self.policy = policy
        self.restarts = 0
        self.exhausted = False  # the intensity limit refused a restart
        self._streak = 0
        self._recent: deque[float] = deque()

    def wants(self, failed: bool) -> bool:
        """True if an ending of this kind (raised or returned) calls for a restart."""
        return failed or self.policy.on is RestartOn.ALWAYS

    def next_delay(self, ran_for: float, now: float) -> float | None:
        """Seconds to wait before restarting a run that lasted ``ran_for`` and ended at ``now``
        (monotonic), counting the restart; None once the intensity limit is reached."""
        policy = self.policy
        while self._recent and self._recent[0] <= now - policy.within:
            self._recent.popleft()
        if policy.max_restarts is not None and len(self._recent) >= policy.max_restarts:
            self.exhausted = True
            return None
        if ran_for >= policy.backoff.reset_after:
            self._streak = 0
        delay = policy.backoff.delay(self._streak)
        self._streak += 1
        self.restarts += 1
        self._recent.append(now)
        return delay

    def limit_text(self) -> str:
        """The intensity limit in words, for the message of a failure that escalated."""
        return f"{len(self._recent)} restarts within {self.policy.within:g} s"
