"""The job table of the memory store and its indexes, kept in step by `Table.move`.

Indexes (each entry goes when its job leaves the state it indexes):

- `active`: jobs by active state (a job's history row stays only in `jobs`);
- lanes: pending jobs by (priority DESC, id) per (domain, tags) (`lanes.Lane`);
- `due`: scheduled and suspended jobs by run_at; `leases`: running jobs by lease expiry;
  `expiry`: unstarted jobs with a ttl by expires_at. These three are heaps of (time, id) whose
  stale entries are skipped when met and dropped when a heap grows past twice its live size;
- `keys`: the active holder of each (type, key); `dependents`: dependency edges by dependency;
  `waits`: suspended jobs by what they wait for; `children`: every job's children, by parent.
"""

from __future__ import annotations

import heapq

from wireframe.store.memory.flow_state import Flows
from wireframe.store.memory.heaps import TimeHeap, due_valid, expiry_valid, lease_valid, rebuilt
from wireframe.store.memory.keybook import KeyBook
from wireframe.store.memory.lanes import SLACK, Lane
from wireframe.store.memory.rows import (
    ACTIVE,
    BLOCKED,
    PAUSED,
    PENDING,
    RUNNING,
    SCHEDULED,
    SUSPENDED,
    TERMINAL,
    Job,
    Schedule,
)
from wireframe.store.rates import RateLimit
from wireframe.store.records import (
    Checkpoint,
    EventRecord,
    JobState,
    JobTypeRecord,
    Transition,
    WorkerRecord,
)

_UNSTARTED = (PENDING, SCHEDULED, BLOCKED, PAUSED)
"""The states of jobs the `expiry` heap may index."""


class Table:
    """Every row of one memory store, its indexes, and the state of the running operation."""

    def __init__(self) -> None:
        self.jobs: dict[int, Job] = {}
        """Every job, by id (in id order: ids only grow)."""
        self.last_id = 0
        self.last_schedule_id = 0
        self.active: dict[JobState, dict[int, Job]] = {s: {} for s in ACTIVE}
        self.tallies: dict[tuple[str, str], dict[JobState, int]] = {}
        self.lanes: dict[tuple[str, tuple[str, ...]], Lane] = {}
        self.domain_lanes: dict[str, list[Lane]] = {}
        self.due: TimeHeap = []
        self.leases: TimeHeap = []
        self.expiry: TimeHeap = []
        self.keys: dict[tuple[str, str], int] = {}
        self.dependents: dict[int, set[int]] = {}
        self.waits: dict[str, set[int]] = {}
        self.children: dict[int, list[int]] = {}
        self.checkpoints: dict[int, dict[int, Checkpoint]] = {}
        self.events: dict[str, EventRecord] = {}
        self.schedules: dict[int, Schedule] = {}
        self.workers: dict[str, WorkerRecord] = {}
        """The live (and recently lost) workers, by id (`lost` is worked out when read)."""
        self.job_types: dict[str, JobTypeRecord] = {}
        """The recorded job types, by type (the SQL `job_types` table)."""
        self.rate_buckets: dict[tuple[str, str], float] = {}
        """Each rate limit bucket's theoretical arrival time, by (limit, key) (`rate_buckets`)."""
        self.rate_limits: dict[str, RateLimit] = {}
        """The rate limits claims applied, by name, as last applied (`rate_limits`)."""
        self.flows = Flows()
        """Paused domains and types, and throttle periods (`flows.py`)."""
        self.flow = KeyBook()
        """Concurrency keys: running counts and turns (`wireframe.store.memory.keys`)."""
        # The running operation.
        self.now = 0.0
        self.transitions: list[Transition] = []
        self.wakes = False
        """Set when work may have become claimable."""

    def begin(self, now: float) -> None:
        """Start an operation at time `now`."""
        self.now = now
        self.wakes = False

    # -- placement ----------------------------------------------------------------------------

    def lane(self, domain: str, tags: tuple[str, ...]) -> Lane:
        """The pending index of jobs of `domain` with exactly these (sorted) tags."""
        found = self.lanes.get((domain, tags))
        if found is None:
            found = self.lanes[(domain, tags)] = Lane(domain, tags, self.jobs)
            self.domain_lanes.setdefault(domain, []).append(found)
        return found

    def tally(self, domain: str, type: str) -> dict[JobState, int]:
        """The per-state job counts of (domain, type)."""
        found = self.tallies.get((domain, type))
        if found is None:
            found = self.tallies[(domain, type)] = {}
        return found

    def insert(self, job: Job) -> None:
        """Add a new job (its fields all set) to the table and its indexes."""
        jid = job.id
        self.jobs[jid] = job
        state = job.state
        tally = job.tally
        tally[state] = tally.get(state, 0) + 1
        if job.parent_id is not None:
            siblings = self.children.get(job.parent_id)
            if siblings is None:
                self.children[job.parent_id] = [jid]
            else:
                siblings.append(jid)
        if state in TERMINAL:
            return
        self.active[state][jid] = job
        if state is PENDING:
            job.lane.enter(job)
        elif state is SCHEDULED:
            self._push_due(job)
        if job.key is not None:
            self.keys[(job.type, job.key)] = jid
        if job.expires_at is not None:
            self.push_expiry(job)

    # -- moves ------------------------------------------------------------------------------

    def move(self, job: Job, new: JobState) -> None:
        """Set a job's state, keeping every index in step (its other fields already set)."""
        old = job.state
        if old is new:
            return
        jid = job.id
        if old is PENDING:
            job.lane.leave(job)
        emptied = self.active.get(old)
        if emptied is not None:
            del emptied[jid]
        job.state = new
        if job.flow_key is not None and (old is RUNNING or new is RUNNING):
            if old is RUNNING:
                self.flow.stopped(job)
            else:
                self.flow.started(job)
        tally = job.tally
        n = tally[old] - 1
        if n:
            tally[old] = n
        else:
            del tally[old]
        tally[new] = tally.get(new, 0) + 1
        bucket = self.active.get(new)
        if bucket is not None:
            bucket[jid] = job
            if new is PENDING:
                job.lane.enter(job)
            elif new is RUNNING:
                self._push_lease(job)
            elif new is SCHEDULED or new is SUSPENDED:
                self._push_due(job)
            if old in TERMINAL and job.key is not None:
                self.keys[(job.type, job.key)] = jid
        elif old not in TERMINAL:
            if job.key is not None and self.keys.get((job.type, job.key)) == jid:
                del self.keys[(job.type, job.key)]
                if self.flows.twins:  # a debounced job beside a started one: it holds it now
                    self.flows.rehold(self.jobs, self.keys, (job.type, job.key))
            if job.wait_for is not None:
                self._unwait(job.wait_for, jid)
        if emptied is not None and not emptied:
            self._emptied(old)

    def _emptied(self, state: JobState) -> None:
        """No job is left in `state`: drop the stale entries of the heaps that index it."""
        active = self.active
        if state is RUNNING:
            self.leases.clear()
        elif (state is SCHEDULED or state is SUSPENDED) and not (
            active[SCHEDULED] or active[SUSPENDED]
        ):
            self.due.clear()
        if state in _UNSTARTED and not any(active[s] for s in _UNSTARTED):
            self.expiry.clear()

    def start(self, job: Job) -> None:
        """Move a pending job to running (its lease fields set): `move`'s hot path, inline."""
        jid = job.id
        lane = job.lane
        job.pkey = None
        lane.live -= 1
        if not lane.live:
            lane.heap.clear()
        bases = lane.bases
        n = bases[job.base_priority] - 1
        if n:
            bases[job.base_priority] = n
        else:
            del bases[job.base_priority]
        active = self.active
        pending = active[PENDING]
        del pending[jid]
        job.state = RUNNING
        if job.flow_key is not None:
            self.flow.started(job)
        tally = job.tally
        n = tally[PENDING] - 1
        if n:
            tally[PENDING] = n
        else:
            del tally[PENDING]
        tally[RUNNING] = tally.get(RUNNING, 0) + 1
        running = active[RUNNING]
        running[jid] = job
        assert job.lease_expires_at is not None
        heapq.heappush(self.leases, (job.lease_expires_at, jid))
        if len(self.leases) > 2 * len(running) + SLACK:
            self.leases = rebuilt(self.leases, self.jobs, lease_valid)
        if not pending:
            self._emptied(PENDING)

    def extend_lease(self, job: Job, until: float) -> None:
        """Move a running job's lease expiry."""
        job.lease_expires_at = until
        self._push_lease(job)

    def set_wait_for(self, job: Job, wait_for: str | None) -> None:
        """Set what a job waits for, keeping the `waits` index in step."""
        if job.wait_for is not None:
            self._unwait(job.wait_for, job.id)
        job.wait_for = wait_for
        if wait_for is not None:
            waiting = self.waits.get(wait_for)
            if waiting is None:
                self.waits[wait_for] = {job.id}
            else:
                waiting.add(job.id)

    def _unwait(self, wait_for: str, job_id: int) -> None:
        waiting = self.waits.get(wait_for)
        if waiting is not None:
            waiting.discard(job_id)
            if not waiting:
                del self.waits[wait_for]

    # -- dependency edges -------------------------------------------------------------------

    def add_edge(self, job: Job, dep: int) -> None:
        """Make `job` wait on job `dep` (a `job_deps` row)."""
        if job.waiting is None:
            job.waiting = set()
        job.waiting.add(dep)
        found = self.dependents.get(dep)
        if found is None:
            self.dependents[dep] = {job.id}
        else:
            found.add(job.id)

    def remove_edge(self, job: Job, dep: int) -> None:
        """Delete the edge from `job` to `dep`, if any."""
        if job.waiting is not None:
            job.waiting.discard(dep)
            if not job.waiting:
                job.waiting = None
        found = self.dependents.get(dep)
        if found is not None:
            found.discard(job.id)
            if not found:
                del self.dependents[dep]

    def drop_edges(self, job: Job) -> None:
        """Delete every edge of `job` (as the dependent)."""
        if job.waiting:
            for dep in list(job.waiting):
                self.remove_edge(job, dep)
        job.waiting = None

    def reschedule(self, job: Job, run_at: float, expires_at: float | None) -> None:
        """Give a waiting (pending or scheduled) job a new run time and ttl: scheduled until
        then (pending if it has come), every index kept in step."""
        job.run_at = run_at
        job.ready_at = max(run_at, self.now)
        job.expires_at = expires_at
        if expires_at is not None:
            self.push_expiry(job)
        if run_at <= self.now:
            self.move(job, PENDING)
        elif job.state is SCHEDULED:
            self._push_due(job)
        else:
            self.move(job, SCHEDULED)

    # -- time heaps -------------------------------------------------------------------------

    def _push_due(self, job: Job) -> None:
        heapq.heappush(self.due, (job.run_at, job.id))
        live = len(self.active[SCHEDULED]) + len(self.active[SUSPENDED])
        if len(self.due) > 2 * live + SLACK:
            self.due = rebuilt(self.due, self.jobs, due_valid)

    def _push_lease(self, job: Job) -> None:
        assert job.lease_expires_at is not None
        heapq.heappush(self.leases, (job.lease_expires_at, job.id))
        if len(self.leases) > 2 * len(self.active[RUNNING]) + SLACK:
            self.leases = rebuilt(self.leases, self.jobs, lease_valid)

    def push_expiry(self, job: Job) -> None:
        """Index an unstarted job's ttl."""
        assert job.expires_at is not None
        heapq.heappush(self.expiry, (job.expires_at, job.id))
        active = self.active
        live = len(active[PENDING]) + len(active[SCHEDULED]) + len(active[BLOCKED])
        if len(self.expiry) > 2 * (live + len(active[PAUSED])) + SLACK:
            self.expiry = rebuilt(self.expiry, self.jobs, expiry_valid)
