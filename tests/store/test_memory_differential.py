"""The memory store against the SQL engine: random operation sequences, identical observations.

Both stores get the same operations at the same (fake) times; every return value, every error,
every observed transition and, after each step, every row that can be read back must match.
"""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from typing import Any

import attrs
import pytest

from wireframe.store import (
    Beat,
    ClaimRequest,
    Complete,
    Fail,
    JobRecord,
    JobState,
    Lease,
    MemoryStore,
    NewJob,
    NewSchedule,
    Outcome,
    Release,
    SqliteMemoryStore,
    Store,
    Transition,
)

from store_support import FakeClock

pytestmark = pytest.mark.anyio

DOMAINS = ("a", "b")
TAGS = ("gpu", "x")


class Pair:
    """The store under test and the reference, driven in lockstep."""

    def __init__(self) -> None:
        self.clock = FakeClock()
        self.memory = MemoryStore(clock=self.clock)
        self.sql = SqliteMemoryStore(clock=self.clock)
        self.spawned = 0
        self.seen: dict[str, list[Transition]] = {"memory": [], "sql": []}
        self.memory.observe(self.seen["memory"].extend)
        self.sql.observe(self.seen["sql"].extend)

    async def call(self, name: str, *args: Any, **kw: Any) -> Any:
        """Call `name` on both stores; results (or errors) must match.

        `housekeep` answers only whether it succeeded: SQLite's store keeps one `Tx` whose
        `wakes` flag, once set, stays set, so its answer is True ever after (PostgreSQL's and
        the memory store's say whether this very call may have made work ready).
        """
        out = []
        for store in (self.memory, self.sql):
            try:
                result = await getattr(store, name)(*args, **kw)
                out.append(("ok", None if name == "housekeep" else result))
            except Exception as exc:  # compared below
                out.append(("error", type(exc).__name__, str(exc)))
        assert out[0] == out[1], (name, _difference(out[0], out[1]), args, kw)
        seen = self.seen
        assert seen["memory"] == seen["sql"], (name, _difference(seen["memory"], seen["sql"]))
        if out[0][0] == "error":
            return None
        return out[0][1]

    async def check(self) -> None:
        """Everything readable is the same in both stores."""
        for name in ("counts", "schedules", "oldest_pending"):
            await self.call(name)
        jobs: list[JobRecord] = await self.call("list_jobs", limit=100_000)
        await self.call("list_jobs", limit=7, offset=2, newest_first=True)
        await self.call("list_jobs", states=[JobState.PENDING, JobState.BLOCKED], domain="a")
        await self.call("list_jobs", states=[JobState.FAILED, JobState.RUNNING])
        await self.call("list_jobs", type="a::t", limit=-1, newest_first=True)
        for job in jobs:
            await self.call("get", job.id)
            await self.call("attempts", job.id)
            await self.call("checkpoints", job.id)
            if job.parent_id is not None:
                await self.call("list_jobs", parent_id=job.parent_id)
        await self.call("next_due_at")
        await self.call("top_pending_priority", DOMAINS, ())
        await self.call("top_pending_priority", ("a",), ("gpu",))
        await self.call("get_event", "e1")


def _difference(a: Any, b: Any) -> Any:
    """The first place where two results differ (a short message for a failing comparison)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        for x, y in zip(a, b, strict=True):
            if x != y:
                return _difference(x, y)
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        for k in a:
            if a[k] != b[k]:
                return (k, _difference(a[k], b[k]))
    if attrs.has(type(a)) and type(a) is type(b):
        fields = attrs.fields_dict(type(a))
        return (
            (a, b)
            if len(fields) < 4
            else {
                f: (getattr(a, f), getattr(b, f)) for f in fields if getattr(a, f) != getattr(b, f)
            }
            | {"job": getattr(a, "id", None)}
        )
    return (a, b)


def _new_job(rng: random.Random, ids: Sequence[int], parents: Sequence[int], now: float) -> NewJob:
    domain = rng.choice(DOMAINS)
    deps = tuple(rng.sample(list(ids), k=min(len(ids), rng.choice([0, 0, 0, 1, 2]))))
    if rng.random() < 0.03:
        deps += (10_000,)  # unknown: the whole submission is refused
    recurring = None
    if rng.random() < 0.05:
        recurring = NewSchedule(
            "{}",
            now + rng.choice([5, 10]),
            rng.choice([None, 2, 3]),
            rng.choice(["skip", "queue", "allow"]),
        )
    return NewJob(
        type=f"{domain}::{rng.choice('tu')}",
        domain=domain,
        payload=str(rng.randint(0, 9)),
        priority=rng.choice([0, 10, 10, 20]),
        run_at=rng.choice([None, None, now - 1, now + 5]),
        key=rng.choice([None, None, None, "k1", "k2"]),
        depends_on=deps,
        on_dependency_failure=rng.choice(["cancel", "fail", "ignore"]),
        parent_id=rng.choice(parents) if parents and rng.random() < 0.4 else None,
        tags=rng.choice([(), (), ("gpu",), ("x", "gpu")]),
        resources=rng.choice([{}, {}, {"cpu": 2}]),
        expires_at=rng.choice([None, None, now + 4, now + 20]),
        max_attempts=rng.randint(1, 3),
        fail_fast=rng.random() < 0.6,
        recurring=recurring,
    )


def _outcome(rng: random.Random, lease: Lease, ids: Sequence[int], now: float) -> Outcome:
    kind = rng.random()
    if kind < 0.4:
        return Complete(lease, rng.choice([None, '"r"']), needs_finalize=rng.random() < 0.2)
    if kind < 0.65:
        return Fail(
            lease,
            "boom",
            rng.choice([None, "tb"]),
            rng.choice([None, now, now + 3]),
            rng.choice(["failed", "timeout"]),
        )
    to = rng.choice(["pending", "paused", "cancelled", "suspended", "suspended"])
    wait_for = None
    if to == "suspended":
        wait_for = rng.choice(
            [
                None,
                "event:e1",
                "event:e2",
                f"job:{rng.choice(ids)}" if ids else "event:e3",
                rng.choice(["bad:1", "job:x", "event:e1"]),
            ]
        )
    return Release(
        lease,
        to,
        rng.choice(["preempted", "stopped"]),  # type: ignore[arg-type]
        rng.choice([None, now + 2, 9.0e15]),
        wait_for,
    )


async def _step(pair: Pair, rng: random.Random, leases: dict[int, Lease]) -> None:
    clock = pair.clock
    jobs: list[JobRecord] = await pair.call("list_jobs", limit=100_000)
    ids = [j.id for j in jobs]
    active = [j.id for j in jobs if not j.terminal]
    op = rng.choice(
        ["submit"] * 4
        + ["claim"] * 3
        + ["finish"] * 4
        + [
            "cancel",
            "pause",
            "resume",
            "retry",
            "time",
            "time",
            "heartbeat",
            "housekeep",
            "age",
            "prune",
            "event",
            "checkpoint",
            "spawn",
            "schedule",
            "stale",
        ]
    )
    now = clock.now
    if op == "submit":
        batch = [_new_job(rng, ids, active, now) for _ in range(rng.choice([1, 1, 2, 3, 20]))]
        await pair.call("submit", batch)
    elif op == "claim":
        chooser = None
        if rng.random() < 0.3:

            def chooser(cands: Sequence[JobRecord]) -> list[int]:
                return [c.id for c in reversed(cands)][::2]
        elif rng.random() < 0.05:

            def chooser(cands: Sequence[JobRecord]) -> list[int]:
                raise ValueError("chooser failed")  # the claim and its housekeeping undone

        request = ClaimRequest(
            rng.choice(["w1", "w2"]),
            rng.choice([0, 1, 2, 5]),
            rng.choice([5.0, 30.0]),
            rng.choice([DOMAINS, ("a",), ("b", "a", "b")]),
            rng.choice([(), (), TAGS, ("gpu",)]),
            exclude_types=rng.choice([(), ("a::t",)]),
            exclude_domains=rng.choice([(), (), ("b",)]),
            scan=rng.choice([0, 3, 10]),
            housekeep=rng.random() < 0.7,
        )
        claimed = await pair.call("claim", request, chooser)
        for j in claimed or ():
            leases[j.id] = j.lease
    elif op == "finish" and leases:
        picked = rng.sample(list(leases.items()), k=min(len(leases), rng.choice([1, 1, 2, 4])))
        outcomes = [_outcome(rng, lease, ids, now) for _, lease in picked]
        if rng.random() < 0.2:
            outcomes.append(_outcome(rng, picked[0][1], ids, now))  # a repeat: refused
        await pair.call("finish", outcomes)
    elif op == "heartbeat" and leases:
        beats = [
            Beat(lease, rng.choice([None, 0.5]), rng.choice([None, "m"]))
            for lease in leases.values()
        ]
        await pair.call("heartbeat", beats, rng.choice([5.0, 30.0]))
    elif op in ("cancel", "pause", "resume", "retry") and ids:
        await pair.call(op, rng.choice([*ids, 10_000]))
    elif op == "time":
        clock.advance(rng.choice([1, 2, 5, 31]))
    elif op == "housekeep":
        await pair.call("housekeep")
    elif op == "age":
        await pair.call("age", rng.choice([0.0, 3.0]), 5, 25)
    elif op == "prune" and rng.random() < 0.3:
        await pair.call("prune", now - rng.choice([0, 5]))
    elif op == "event" and leases and rng.random() < 0.5:
        lease = rng.choice(list(leases.values()))
        event, payload = rng.choice(["e1", "e2"]), rng.choice([None, "p"])
        await pair.call("emit_from_job", lease, rng.randint(0, 2), "$emit", event, payload, 30.0)
    elif op == "event":
        await pair.call("emit_event", rng.choice(["e1", "e2"]), rng.choice([None, "p"]))
    elif op == "checkpoint" and leases:
        lease = rng.choice(list(leases.values()))
        await pair.call("put_checkpoint", lease, rng.randint(0, 2), "n", "call", "1", 30.0)
    elif op == "spawn" and leases:
        job_id, lease = rng.choice(list(leases.items()))
        child = _new_job(rng, ids, [], now)
        child = NewJob(
            child.type,
            child.domain,
            child.payload,
            parent_id=job_id,
            key=child.key,
            depends_on=child.depends_on,
        )
        pair.spawned += 1
        await pair.call("spawn_child", lease, 100 + pair.spawned, "s", child, 30.0)
    elif op == "schedule":
        for schedule in await pair.call("due_schedules", DOMAINS):
            following = rng.choice([None, clock.now + 5])
            await pair.call("fire_schedule", schedule.id, schedule.next_run_at, following)
        schedules = await pair.call("schedules")
        if schedules and rng.random() < 0.3:
            target = rng.choice(schedules)
            await pair.call(
                "set_schedule_state",
                target.id,
                rng.choice(["active", "paused", "cancelled"]),
                rng.choice([None, clock.now + 1]),
            )
    elif op == "stale" and leases:
        leases.pop(rng.choice(list(leases)))
    for job_id, lease in list(leases.items()):
        record = await pair.memory.get(job_id)
        if record is None or record.claim_seq != lease.claim_seq or record.terminal:
            del leases[job_id]


@pytest.fixture
def anyio_backend() -> str:
    """One backend: the stores behave alike on both, and the conformance suite runs both."""
    return "asyncio"


@pytest.mark.parametrize("seed", range(int(os.environ.get("STORE_DIFF_SEEDS", "6"))))
async def test_memory_store_matches_the_sql_engine(seed: int) -> None:
    rng = random.Random(seed)
    pair = Pair()
    stores: tuple[Store, ...] = (pair.memory, pair.sql)
    for store in stores:
        await store.open()
    try:
        leases: dict[int, Lease] = {}
        for _ in range(250):
            await _step(pair, rng, leases)
            await pair.check()
    finally:
        for store in stores:
            await store.close()
