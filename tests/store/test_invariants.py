"""Store conformance: random operation sequences never break the store's invariants."""

from __future__ import annotations

import os
import random

import pytest

from wireframe.store import (
    Complete,
    DuplicateKeyError,
    Fail,
    InvalidTransitionError,
    JobRecord,
    JobState,
    Release,
    Store,
)

from store_support import TTL, job, request

pytestmark = pytest.mark.anyio

DOMAINS = ("a", "b")


async def check_invariants(store: Store) -> None:
    """Every rule a user relies on that can be read back from the store."""
    jobs = {j.id: j for j in await store.list_jobs(limit=100_000)}
    full = {i: await store.get(i) for i, j in jobs.items() if j.state is JobState.BLOCKED}
    children: dict[int, list[JobRecord]] = {}
    for j in jobs.values():
        if j.parent_id is not None:
            children.setdefault(j.parent_id, []).append(j)
    for j in jobs.values():
        where = f"job {j.id} ({j.state})"
        if j.terminal:
            assert j.finished_at is not None, where
        if j.state is JobState.RUNNING:
            assert j.worker_id is not None and j.lease_expires_at is not None, where
        else:
            assert j.worker_id is None and j.lease_expires_at is None, where
        if not j.terminal:
            active = [c.id for c in children.get(j.id, []) if not c.terminal]
            assert j.active_children == len(active), (where, j.active_children, active)
        if j.state is JobState.WAITING:
            assert j.active_children > 0, where
        if j.state is JobState.BLOCKED:
            record = full[j.id]
            assert record is not None
            assert record.depends_on, where
            for dep in record.depends_on:
                dep_state = jobs[dep].state
                assert not dep_state.terminal or dep_state is JobState.DEPENDENCY_FAILED, (
                    where,
                    dep,
                    dep_state,
                )


@pytest.mark.parametrize("seed", range(int(os.environ.get("STORE_FUZZ_SEEDS", "4"))))
async def test_random_operations_keep_invariants(store: Store, clock, seed: int) -> None:
    rng = random.Random(seed)
    leases: dict[int, JobRecord] = {}
    for _ in range(150):
        ids = [j.id for j in await store.list_jobs(limit=100_000)]
        op = rng.choice(
            [
                "submit",
                "submit",
                "claim",
                "finish",
                "finish",
                "cancel",
                "pause",
                "resume",
                "retry",
                "time",
                "stale",
            ]
        )
        if op == "submit":
            batch = []
            for _ in range(rng.randint(1, 3)):
                deps = tuple(rng.sample(ids, k=min(len(ids), rng.randint(0, 2))))
                running = list(leases)
                parent = rng.choice(running) if running and rng.random() < 0.5 else None
                batch.append(
                    job(
                        f"{rng.choice(DOMAINS)}::t",
                        depends_on=deps,
                        on_dependency_failure=rng.choice(["cancel", "fail", "ignore"]),
                        parent_id=parent,
                        fail_fast=rng.random() < 0.7,
                        max_attempts=rng.randint(1, 3),
                        key=rng.choice([None, None, "k1", "k2"]),
                        run_at=clock.now + rng.choice([0, 0, 5]),
                        expires_at=rng.choice([None, None, clock.now + 7]),
                    )
                )
            try:
                await store.submit(batch)
            except InvalidTransitionError:
                pass  # a parent that ended meanwhile
        elif op == "claim":
            for j in await store.claim(request(limit=rng.randint(1, 4), domains=DOMAINS)):
                leases[j.id] = j
        elif op == "finish" and leases:
            job_id = rng.choice(list(leases))
            lease = leases.pop(job_id).lease
            outcome = rng.choice(
                [
                    Complete(lease, "1", needs_finalize=rng.random() < 0.3),
                    Fail(lease, "boom", retry_at=rng.choice([None, clock.now + 1])),
                    Release(lease, rng.choice(["pending", "paused", "cancelled"]), "r"),
                ]
            )
            await store.finish([outcome])
        elif op in ("cancel", "pause", "resume", "retry") and ids:
            target = rng.choice(ids)
            try:
                await getattr(store, op)(target)
            except (InvalidTransitionError, DuplicateKeyError):
                pass
        elif op == "time":
            clock.advance(rng.choice([1, 3, TTL]))
        elif op == "stale" and leases:
            # A worker dies: it forgets its lease, which expires later.
            leases.pop(rng.choice(list(leases)))
        # Leases we still hold but that expired are no longer ours to finish.
        for job_id, held in list(leases.items()):
            record = await store.get(job_id)
            if record is None or record.claim_seq != held.claim_seq or record.terminal:
                del leases[job_id]
        await check_invariants(store)
