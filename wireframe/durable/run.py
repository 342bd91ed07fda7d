"""Suspend-and-replay: one invocation of a durable job, checked call by call against its record.

Every durable call takes the next position (a finalize handler's calls have positions of their
own, from `FINALIZE_BASE`). If the job recorded a checkpoint there on an earlier run, the call
must have the same identity and kind (else `NonDeterminismError`) and returns the recorded value;
otherwise it does the work and records it, fenced on the job's lease. An identity is what the
call did: a step's name and arguments, a spawn's child type and payload, a join's child.

Every write a durable call makes is one fenced store operation (`put_checkpoint`, `spawn_child`,
`emit_from_job`): a stale invocation (its lease taken over by a newer claim) or one whose job was
asked to stop writes nothing, and the call raises `LeaseLost` with the store's reason.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs

from wireframe.durable._uuid7 import RAND_BITS, compose, next_uuid7
from wireframe.durable.errors import (
    ChildCancelled,
    ChildFailed,
    DeferTimeout,
    DurableError,
    EventTimeout,
    LeaseLost,
    NonDeterminismError,
    NotAChildError,
    Suspend,
)
from wireframe.durable.transaction import KIND, TransactionStep
from wireframe.store import Checkpoint, JobState, Lease, LeaseStatus, NewJob, Store

T = TypeVar("T")


class CheckpointNameError(DurableError, ValueError):
    """A checkpoint name that is empty, not a str, or uses the reserved `$` prefix."""


def _jsonable(value: object) -> object:
    if attrs.has(type(value)):
        return attrs.asdict(value)  # type: ignore[arg-type]
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"object of type {type(value).__qualname__} is not JSON-serialisable")


def to_json(value: object, *, where: str) -> str:
    """Canonical JSON (sorted keys, no NaN) or a DurableError naming `where`."""
    try:
        return json.dumps(
            value, sort_keys=True, separators=(",", ":"), allow_nan=False, default=_jsonable
        )
    except (TypeError, ValueError) as exc:
        raise DurableError(f"{where}: {exc}") from None


def uuid7(now: float, rand_bits: int) -> uuid.UUID:
    """A version-7 UUID: 48 bits of Unix milliseconds, then 74 random bits."""
    return compose(int(now * 1000), rand_bits & ((1 << RAND_BITS) - 1))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _short(text: str | None, limit: int = 200) -> str:
    text = "null" if text is None else text
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _step_name(identity: str) -> str:
    """The user's name in a step's identity (`name:digest`, `#n` for a repeat)."""
    base, _, repeat = identity.rpartition("#")
    if not (base and repeat.isdigit()):
        base = identity
    return base.rpartition(":")[0]


FINALIZE_BASE = 1_000_000_000
"""The position of a finalize handler's first durable call: the execute handler's calls take
the positions below it, so the two phases keep separate records in one sequence."""


@attrs.frozen
class ChildHandle:
    """A child job spawned by a handler: pass it to `join`, or read its id."""

    id: int


ChildBuilder = Callable[[object, dict[str, Any]], NewJob]
Spawned = Callable[[int, NewJob], None]
"""Told of each child the store has just created (its id and row), not of replayed ones."""
ChildWrite = Callable[[NewJob], Awaitable["int | LeaseStatus"]]
SpawnHook = Callable[[object, NewJob, ChildWrite], Awaitable["int | LeaseStatus"]]
"""Runs around the write of a new child (its payload, its row, the write; not for replayed
ones): it may store another row in its place (with more metadata) through the write."""
StepHook = Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]]
"""Runs around the work of a step that is not replayed (its name, the work to await)."""


class DurableRun:
    """The durable calls of one invocation of one job."""

    def __init__(
        self,
        store: Store,
        lease: Lease,
        lease_ttl: float,
        job_type: str,
        *,
        build_child: ChildBuilder,
        decode_result: Callable[[str | None], object],
        spawned: Spawned | None = None,
        phase: str = "execute",
        spawn_hook: SpawnHook | None = None,
        step_hook: StepHook | None = None,
    ) -> None:
        self._store = store
        self._lease = lease
        self._ttl = lease_ttl
        self._where = f"job {lease.job_id} ({job_type})"
        self._build_child = build_child
        self._spawned = spawned
        self._spawn_hook = spawn_hook
        self._step_hook = step_hook
        self._decode_result = decode_result
        self._recorded: dict[int, Checkpoint] | None = None
        """The checkpoints of this phase, by position (a call that recorded nothing, such as
        a step that raised, leaves its position empty)."""
        self._base = FINALIZE_BASE if phase == "finalize" else 0
        self._position = self._base
        self._repeats: Counter[str] = Counter()

    # -- the replay cursor ------------------------------------------------------------------

    def _identity(self, base: str) -> str:
        self._repeats[base] += 1
        n = self._repeats[base]
        return base if n == 1 else f"{base}#{n}"

    async def _take(self) -> tuple[Checkpoint | None, int]:
        """The next position, and the checkpoint an earlier run recorded there (or None)."""
        low, high = self._base, self._base + FINALIZE_BASE
        if self._recorded is None:
            found = await self._store.checkpoints(self._lease.job_id)
            self._recorded = {c.seq: c for c in found if low <= c.seq < high}
        position = self._position
        if position >= high:
            raise DurableError(f"{self._where}: more than {FINALIZE_BASE} durable calls")
        self._position += 1
        return self._recorded.get(position), position

    async def _next(self, identity: str, kind: str) -> tuple[Checkpoint | None, int]:
        found, position = await self._take()
        if found is not None and (found.name != identity or found.kind != kind):
            raise self._diverged(position, f"{found.kind} {found.name!r}", f"{kind} {identity!r}")
        return found, position

    def _diverged(self, position: int, recorded: str, asked: str) -> NonDeterminismError:
        """The error of a re-run whose durable call at `position` is not the recorded one."""
        call = f"durable call #{position - self._base + 1}"
        if self._base:
            call += " of the finalize handler"
        return NonDeterminismError(
            f"{self._where}: {call} was recorded as {recorded}, but this run asked for "
            f"{asked}; a handler must make the same durable calls in the same order on every run"
        )

    async def _record(self, position: int, identity: str, kind: str, value: str | None) -> None:
        status = await self._store.put_checkpoint(
            self._lease, position, identity, kind, value, self._ttl
        )
        if status is not LeaseStatus.OK:
            raise LeaseLost(status)
        self._remember(position, identity, kind, value)

    def _remember(self, position: int, identity: str, kind: str, value: str | None) -> None:
        """Keep a checkpoint the store has just recorded for this invocation."""
        assert self._recorded is not None
        self._recorded[position] = Checkpoint(
            self._lease.job_id, position, identity, kind, value, time.time()
        )

    def _user_name(self, name: object, call: str) -> str:
        if not isinstance(name, str) or not name:
            raise CheckpointNameError(
                f"{self._where}: {call} name must be a non-empty str, got {name!r}"
            )
        if name.startswith("$"):
            raise CheckpointNameError(
                f"{self._where}: {call} name {name!r}: names starting with '$' are reserved"
            )
        return name

    # -- steps and values -------------------------------------------------------------------

    async def step(
        self, name: str, fn: Callable[..., T | Awaitable[T]], *args: Any, **kwargs: Any
    ) -> Any:
        """Run `fn(*args, **kwargs)` once; later runs return its recorded JSON result."""
        self._user_name(name, "step")
        arguments = to_json([list(args), kwargs], where=f"{self._where}: step {name!r} arguments")
        identity = self._identity(f"{name}:{_digest(arguments)}")
        found, position = await self._take()
        if found is not None and (found.name != identity or found.kind != "step"):
            asked = f"step {identity!r}"
            if found.kind == "step" and _step_name(found.name) == name:
                asked += f" (the same step with other arguments: {_short(arguments)})"
            raise self._diverged(position, f"step {found.name!r}", asked)
        if found is not None:
            return json.loads(found.value) if found.value is not None else None

        async def work() -> str:
            result = fn(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            value = to_json(result, where=f"{self._where}: result of step {name!r}")
            await self._record(position, identity, "step", value)
            return value

        value = await (work() if self._step_hook is None else self._step_hook(name, work))
        return json.loads(value)

    async def _value(self, kind: str, make: Callable[[], object]) -> Any:
        identity = self._identity(f"${kind}")
        found, position = await self._next(identity, kind)
        if found is not None:
            return json.loads(found.value) if found.value is not None else None
        value = to_json(make(), where=f"{self._where}: {kind}")
        await self._record(position, identity, kind, value)
        return json.loads(value)

    async def now(self) -> float:
        """The time of the first run of this call, as a Unix timestamp."""
        return float(await self._value("now", time.time))

    async def rand(self) -> float:
        """A random float in [0, 1), the same on every run."""
        return float(await self._value("rand", random.random))

    async def uuid7(self) -> uuid.UUID:
        """A time-ordered UUID (version 7), the same on every run; within a process, each new
        one is greater than the one before."""
        text = await self._value("uuid7", lambda: str(next_uuid7()))
        return uuid.UUID(str(text))

    async def transaction_step(self, name: str) -> TransactionStep:
        """The transaction step `name` at the next position: done on an earlier run, or to be
        recorded in the transaction of its writes (`wireframe.durable.transaction`)."""
        identity = self._identity(self._user_name(name, "transaction step"))
        found, position = await self._next(identity, KIND)
        return TransactionStep(
            done=found is not None,
            lease=self._lease,
            position=position,
            identity=identity,
            lease_ttl=self._ttl,
            remember=self._remember,
        )

    # -- sleeping and events ----------------------------------------------------------------

    async def sleep_until(self, name: str, when: float) -> None:
        """Suspend the job until `when`; the wake time is recorded once."""
        identity = self._identity(self._user_name(name, "sleep"))
        found, position = await self._next(identity, "sleep")
        if found is None:
            wake = float(when)
            await self._record(position, identity, "sleep", to_json(wake, where=self._where))
        else:
            wake = float(json.loads(found.value or "0"))
        if time.time() < wake:
            raise Suspend(wake, None, f"sleeping ({name}) until {wake:.3f}")

    async def sleep(self, name: str, seconds: float) -> None:
        """Suspend the job for `seconds`, counted from the first run of this call."""
        if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
            raise DurableError(
                f"{self._where}: sleep {name!r} seconds must be >= 0, got {seconds!r}"
            )
        await self.sleep_until(name, time.time() + float(seconds))

    async def wait_event(self, name: str, timeout: float | None = None) -> Any:  # noqa: ASYNC109
        """Wait for the event `name` (a latch); suspended meanwhile. Raises EventTimeout."""
        identity = self._identity(self._user_name(name, "wait_event"))
        found, position = await self._next(identity, "event")
        if found is None:
            deadline = None if timeout is None else time.time() + float(timeout)
            state: dict[str, Any] = {"deadline": deadline}
            await self._record(position, identity, "event", to_json(state, where=self._where))
        else:
            state = json.loads(found.value or "{}")
            if state.get("done"):
                return state.get("payload")
            if state.get("timed_out"):
                raise EventTimeout(f"{self._where}: event {name!r} was not emitted in time")
        event = await self._store.get_event(name)
        if event is not None:
            state.update(done=True, payload=json.loads(event.payload) if event.payload else None)
            await self._record(position, identity, "event", to_json(state, where=self._where))
            return state["payload"]
        deadline = state.get("deadline")
        if deadline is not None and time.time() >= deadline:
            state.update(timed_out=True)
            await self._record(position, identity, "event", to_json(state, where=self._where))
            raise EventTimeout(f"{self._where}: event {name!r} was not emitted within {timeout}s")
        raise Suspend(deadline, f"event:{name}", f"waiting for event {name!r}")

    async def defer_until(self, limit: float, wait: Callable[[float], Awaitable[bool]]) -> None:
        """`wait(deadline)` (True if the condition came true before the Unix time `deadline`)
        under a deadline recorded on the first run, `limit` seconds after it; how it ended is
        recorded too, so a re-run returns at once, or raises DeferTimeout again."""
        identity = self._identity("$defer")
        found, position = await self._next(identity, "defer")
        if found is None:
            state: dict[str, Any] = {"deadline": time.time() + limit, "timeout": limit}
            await self._record(position, identity, "defer", to_json(state, where=self._where))
        else:
            state = json.loads(found.value or "{}")
        if not state.get("done") and not state.get("timed_out"):
            met = await wait(float(state["deadline"]))
            state["done" if met else "timed_out"] = True
            await self._record(position, identity, "defer", to_json(state, where=self._where))
        if state.get("timed_out"):
            raise DeferTimeout(
                f"{self._where}: defer_until: the condition did not come true within "
                f"{state.get('timeout')}s"
            )

    async def emit_event(self, name: str, payload: object = None) -> bool:
        """Emit an event once per run history; True if this emit set the latch."""
        if not isinstance(name, str) or not name:
            raise CheckpointNameError(
                f"{self._where}: event name must be a non-empty str, got {name!r}"
            )
        identity = self._identity(f"$emit:{name}")
        found, position = await self._next(identity, "emit")
        if found is not None:
            return bool(json.loads(found.value or "false"))
        text = to_json(payload, where=f"{self._where}: payload of event {name!r}")
        # One fenced step: a stale or cancelled invocation sets no latch.
        won = await self._store.emit_from_job(
            self._lease, position, identity, name, text, self._ttl
        )
        if isinstance(won, LeaseStatus):
            raise LeaseLost(won)
        self._remember(position, identity, "emit", to_json(won, where=self._where))
        return won

    # -- children ---------------------------------------------------------------------------

    async def spawn(self, payload: object, options: dict[str, Any]) -> ChildHandle:
        """Submit a child once; later runs get the same child back."""
        job = self._build_child(payload, options)
        # A spawn is its child's type and payload (and parent, for a sibling): a re-run that
        # spawns another child at this position diverges, and must not get the old child back.
        parent = "" if job.parent_id == self._lease.job_id else f"\nparent={job.parent_id}"
        identity = self._identity(f"$spawn:{job.type}:{_digest(job.payload + parent)}")
        legacy = self._identity(f"$spawn:{job.type}")  # how earlier versions named a spawn
        found, position = await self._take()
        if found is not None:
            if found.kind != "spawn" or found.name not in (identity, legacy):
                raise await self._spawn_diverged(found, position, job)
            return ChildHandle(int(found.value or "0"))

        def write(row: NewJob) -> Awaitable[int | LeaseStatus]:
            return self._store.spawn_child(self._lease, position, identity, row, self._ttl)

        hook = self._spawn_hook
        child_id = await (write(job) if hook is None else hook(payload, job, write))
        if isinstance(child_id, LeaseStatus):
            raise LeaseLost(child_id)
        self._remember(position, identity, "spawn", str(child_id))
        if self._spawned is not None:
            self._spawned(child_id, job)
        return ChildHandle(child_id)

    async def _spawn_diverged(
        self, found: Checkpoint, position: int, job: NewJob
    ) -> NonDeterminismError:
        asked = f"a spawn of {job.type} with payload {_short(job.payload)}"
        if found.kind != "spawn":
            return self._diverged(position, f"{found.kind} {found.name!r}", asked)
        child = await self._store.get(int(found.value or "0"))
        if child is None:
            recorded = f"the spawn of job {found.value} (since deleted)"
        else:
            recorded = (
                f"a spawn of {child.type} with payload {_short(child.payload)} (job {child.id})"
            )
        return self._diverged(position, recorded, asked)

    async def join(self, handle: ChildHandle) -> Any:
        """The child's result; suspends until it ends. Raises ChildFailed or ChildCancelled."""
        identity = self._identity(f"$join:{handle.id}")
        found, position = await self._next(identity, "join")
        if found is not None:
            outcome = json.loads(found.value or "{}")
        else:
            child = await self._store.get(handle.id)
            if child is None:
                raise ChildFailed(handle.id, f"child job {handle.id} no longer exists")
            if child.parent_id != self._lease.job_id:
                raise NotAChildError(
                    f"{self._where}: join({handle!r}): job {handle.id} is not a child of job "
                    f"{self._lease.job_id}; join the handles that ctx.spawn returned"
                )
            if not child.terminal:
                raise Suspend(None, f"job:{handle.id}", f"joining child job {handle.id}")
            outcome = {"state": str(child.state), "result": child.result, "error": child.error}
            await self._record(position, identity, "join", to_json(outcome, where=self._where))
        state = outcome.get("state")
        if state == JobState.COMPLETED:
            return self._decode_result(outcome.get("result"))
        if state == JobState.CANCELLED:
            raise ChildCancelled(handle.id)
        raise ChildFailed(
            handle.id, f"child job {handle.id} ended as {state}: {outcome.get('error')}"
        )
