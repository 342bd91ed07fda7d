"""Claiming work: housekeeping (due jobs, expiry, expired leases), aging, then leased claims."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from wireframe.store.records import ClaimRequest, JobRecord, JobState, Transition
from wireframe.store.rules import reclaim_reason
from wireframe.store.sql.attempts import CLOSE_ATTEMPT
from wireframe.store.sql.cascade import settle
from wireframe.store.sql.flows import PAUSED_CLAUSE
from wireframe.store.sql.keys import CAP_OPEN, LOCK_KEY, ORDER, admit, lease_admitted
from wireframe.store.sql.locks import note_held, note_top
from wireframe.store.sql.rates import claim_rated, forget_full_buckets
from wireframe.store.sql.rows import JOB_COLUMNS, Ended, chunks, job_from_row, placeholders
from wireframe.store.sql.tx import Tx

Chooser = Callable[[Sequence[JobRecord]], Sequence[int]]


def housekeep(tx: Tx, now: float) -> bool:
    """Wake due jobs, expire stale ones and take back expired leases: one step, many workers.

    Returns whether work may have become claimable.
    """
    if _wake_due(tx, now):
        tx.wakes = True
    expired = tx.execute(
        "UPDATE jobs SET state = 'expired', finished_at = ?, "
        "error = 'not started before its ttl ran out', reason = 'ttl' "
        "WHERE id IN (SELECT id FROM jobs WHERE expires_at <= ? "
        "AND expires_at IS NOT NULL AND state IN ('pending', 'scheduled')"
        f"{tx.dialect.skip_locked}) "
        "RETURNING id, parent_id, active_children, type",
        (now, now),
    ).fetchall()
    note_held(tx, (row[0] for row in expired))
    ended = [Ended(i, "expired", p, a, "ttl") for i, p, a, _ in expired]
    tx.transitions.extend(Transition(i, t, JobState.EXPIRED) for i, _, _, t in expired)
    ended.extend(reclaim_expired_leases(tx, now))
    if ended:
        settle(tx, now, ended)
    forget_full_buckets(tx, now)
    return tx.wakes


def _wake_due(tx: Tx, now: float) -> bool:
    """Move due scheduled and suspended jobs to pending; True if any moved.

    PostgreSQL skips rows another transaction holds (the next pass takes them): housekeeping
    never waits, so it may hold rows in any order (`wireframe.store.sql.locks`).
    """
    sql = (
        "UPDATE jobs SET state = 'pending', ready_at = run_at, wait_for = NULL "
        "WHERE state IN ('scheduled', 'suspended') AND run_at <= ?"
    )
    if not tx.dialect.lock:
        return tx.execute(sql, (now,)).rowcount > 0
    sql = (
        "WITH w AS (UPDATE jobs SET state = 'pending', ready_at = run_at, wait_for = NULL "
        "WHERE id IN (SELECT id FROM jobs WHERE state IN ('scheduled', 'suspended') "
        f"AND run_at <= ?{tx.dialect.skip_locked}) RETURNING id) SELECT max(id) FROM w"
    )
    top = tx.execute(sql, (now,)).fetchone()[0]
    note_top(tx, top)
    return top is not None


def reclaim_expired_leases(tx: Tx, now: float) -> list[Ended]:
    """Take back running jobs whose worker stopped renewing the lease.

    A lost worker spends the job's reclaim budget (`max_reclaims`), not its retry policy's
    attempts: the attempt is closed as `lease_expired` and the job runs again under a new
    number, unless it has used up its reclaims (it fails), was asked to cancel (it is
    cancelled), to pause (it is paused) or has a failed child (it fails).
    """
    rows = tx.execute(
        "SELECT id, worker_id, attempt, reclaims, max_reclaims, cancel_requested, "
        "pause_requested, child_failed, parent_id, active_children, error, attempt_started_at, "
        "type "
        f"FROM jobs WHERE state = 'running' AND lease_expires_at <= ?{tx.dialect.skip_locked}",
        (now,),
    ).fetchall()
    note_held(tx, (row[0] for row in rows))
    ended: list[Ended] = []
    closes: list[tuple[object, ...]] = []
    for row in rows:
        job_id, worker, attempt, reclaims, max_reclaims, cancel, pause, child_failed = row[:8]
        parent, kids, err, attempt_started, type_ = row[8:]
        lost = reclaims + 1
        reason = reclaim_reason(worker, lost, max_reclaims)
        closes.append((job_id, attempt, worker, attempt_started, now, "lease_expired", reason))
        if child_failed or cancel or lost > max_reclaims:
            state = "failed" if child_failed or not cancel else "cancelled"
            error = err if child_failed else (reason if state == "failed" else err)
            tx.execute(
                "UPDATE jobs SET state = ?, finished_at = ?, error = ?, reason = ?, "
                "reclaims = ?, worker_id = NULL, lease_expires_at = NULL WHERE id = ?",
                (state, now, error, reason, lost, job_id),
            )
            ended.append(Ended(job_id, state, parent, kids, error, blocked_on=False))
            tx.transitions.append(
                Transition(job_id, type_, JobState(state), error=error or reason, attempt=attempt)
            )
        elif pause:
            tx.execute(
                "UPDATE jobs SET state = 'paused', paused_from = 'pending', pause_requested = 0, "
                "new_attempt = 1, reclaims = ?, reason = ?, worker_id = NULL, "
                "lease_expires_at = NULL WHERE id = ?",
                (lost, reason, job_id),
            )
        else:
            tx.wakes = True
            tx.execute(
                "UPDATE jobs SET state = 'pending', new_attempt = 1, reclaims = ?, ready_at = ?, "
                "reason = ?, worker_id = NULL, lease_expires_at = NULL WHERE id = ?",
                (lost, now, reason, job_id),
            )
    tx.bulk(CLOSE_ATTEMPT, closes)
    return ended


def age(tx: Tx, now: float, older_than: float, step: int, cap: int) -> int:
    """Raise by `step` (up to `cap`) the priority of jobs pending longer than `older_than`
    since they became ready and since their last raise (`aged_at`; `ready_at` stays put)."""
    since = now - older_than
    cur = tx.execute(
        f"UPDATE jobs SET priority = {tx.dialect.least('?', 'priority + ?')}, aged_at = ? "
        "WHERE id IN (SELECT id FROM jobs WHERE state = 'pending' AND ready_at <= ? "
        "AND (aged_at IS NULL OR aged_at <= ?) "
        f"AND priority < ?{tx.dialect.skip_locked})",  # never waits: a claim may hold some
        (cap, step, now, since, since, cap),
    )
    return cur.rowcount


def _candidate_filter(
    tx: Tx, req: ClaimRequest, now: float | None = None
) -> tuple[str, list[object]]:
    """The WHERE clause selecting pending jobs this request may take.

    With `now`, a job whose ttl has run out is never taken, even before housekeeping marks it
    expired. Only a job that never started has a ttl (a claim clears `expires_at`), so this
    skips exactly the jobs that expiry ends: none is left for neither.
    """
    clauses = ["state = 'pending'", f"domain IN ({placeholders(len(req.domains))})", PAUSED_CLAUSE]
    params: list[object] = list(req.domains)
    if now is not None:
        clauses.append("(expires_at IS NULL OR expires_at > ?)")
        params.append(now)
    if req.exclude_domains:
        clauses.append(f"domain NOT IN ({placeholders(len(req.exclude_domains))})")
        params.extend(req.exclude_domains)
    if req.exclude_types:
        clauses.append(f"type NOT IN ({placeholders(len(req.exclude_types))})")
        params.extend(req.exclude_types)
    if req.tags:
        clauses.append(tx.dialect.tags_subset())
        params.append(tx.dialect.tags_param(req.tags))
    else:
        clauses.append("tags IS NULL")
    return " AND ".join(clauses), params


_LEASE = (
    "UPDATE jobs SET state = 'running', worker_id = ?, lease_expires_at = ?, claim_token = ?, "
    "claim_seq = claim_seq + 1, attempt = attempt + new_attempt, new_attempt = 0, "
    "started_at = coalesce(started_at, ?), attempt_started_at = ?, cancel_requested = 0, "
    "pause_requested = 0, wait_for = NULL, expires_at = NULL "
)
"""Lease picked jobs. A ttl bounds only the wait before a job's first start, so the lease
clears it: a started job that waits again (retry, durable sleep, lost worker) never expires."""


def claim(
    tx: Tx, now: float, req: ClaimRequest, chooser: Chooser | None, token: str | None = None
) -> list[JobRecord]:
    """Lease up to `req.limit` pending jobs, best priority first, then by turns of their
    concurrency keys (FIFO without keys); never past a key's cap (`wireframe.store.sql.keys`).

    `token`, unique to this claim, is written on every leased row (see `leased_by`).
    """
    if req.housekeep:
        housekeep(tx, now)
    if req.limit <= 0 or not req.domains:
        return []
    where, params = _candidate_filter(tx, req, now)
    where = f"{where} AND {CAP_OPEN}"
    if req.rates:
        return claim_rated(tx, now, req, chooser, token, (where, params), _LEASE)
    skip = tx.dialect.skip_locked
    lease = (req.worker_id, now + req.lease_ttl, token, now, now)
    if chooser is None:
        jobs = _pick_and_lease(tx, req, where, params, lease)
        jobs.sort(key=lambda j: (-j.priority, j.id))
        return jobs
    rows = tx.execute(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE {where} ORDER BY {ORDER} LIMIT ?{skip}",
        (*params, max(req.scan, req.limit)),
    ).fetchall()
    if not rows:
        return []
    candidates = [job_from_row(r) for r in rows]
    allowed = {c.id: c for c in candidates}
    picked = [allowed[i] for i in dict.fromkeys(chooser(candidates)) if i in allowed]
    chosen = admit(tx, [(j.id, j.flow_key, j.key_cap) for j in picked], req.limit)
    if not chosen:
        return []
    claimed = tx.execute(
        f"{_LEASE} WHERE id IN ({placeholders(len(chosen))}) AND state = 'pending' "
        f"RETURNING {JOB_COLUMNS}",
        (*lease, *chosen),
    ).fetchall()
    order = {job_id: i for i, job_id in enumerate(chosen)}
    return sorted((job_from_row(r) for r in claimed), key=lambda j: order[j.id])


ROUNDS = 3
"""Picks one claim makes at most: a pick whose keyed jobs their caps turn away is followed by
one that leaves those keys out, so a key at its cap does not shrink the claim."""


def _pick_and_lease(
    tx: Tx, req: ClaimRequest, where: str, params: list[object], lease: tuple[object, ...]
) -> list[JobRecord]:
    """The common claim: pick the best jobs and lease those their keys' caps let start."""
    jobs: list[JobRecord] = []
    full: list[str] = []
    for _ in range(ROUNDS):
        room = req.limit - len(jobs)
        if room <= 0:
            break
        cond, args = where, params
        if full:
            cond = f"{where} AND (flow_key IS NULL OR flow_key NOT IN ({placeholders(len(full))}))"
            args = [*params, *full]
        leased, turned_away = _pick_round(tx, room, cond, args, lease)
        jobs.extend(leased)
        if not turned_away:
            break
        full.extend(turned_away)
    return jobs


def _pick_round(
    tx: Tx, room: int, where: str, params: list[object], lease: tuple[object, ...]
) -> tuple[list[JobRecord], list[str]]:
    """Pick up to `room` jobs and lease them: those with a key cap only once `admit` lets
    them (a second statement, only when some were picked). Also returns the keys of the
    picked jobs `admit` turned away."""
    skip = tx.dialect.skip_locked
    pick = f"SELECT id, flow_key, key_cap FROM jobs WHERE {where} ORDER BY {ORDER} LIMIT ?{skip}"
    if not tx.dialect.materialize_pick:
        picked = [(r[0], r[1], r[2]) for r in tx.execute(pick, (*params, room)).fetchall()]
        chosen = admit(tx, picked, room)
        return _lease_ids(tx, chosen, lease), _turned_away(picked, chosen)
    # PostgreSQL may re-run a LIMIT subquery under `IN` and lease more than `limit`.
    # The picked rows are locked and were pending when locked, so the lease finds
    # them by primary key alone: `state = 'pending'` or a join there lets statistics
    # that lag behind a busy queue choose a scan of the table or of every pending job.
    # Jobs without a cap are leased at once; those with one come back unleased (their
    # row's other columns NULL, then `flow_key` and whether this claim got its key's lock)
    # for `lease_admitted`, whose statement counts the key's running jobs after the lock.
    pad = ", ".join(["NULL"] * (JOB_COLUMNS.count(",") - 1))
    sql = (
        f"WITH picked AS MATERIALIZED ({pick}), leased AS ({_LEASE} "
        f"WHERE id = ANY(ARRAY(SELECT id FROM picked WHERE key_cap IS NULL)) "
        f"RETURNING {JOB_COLUMNS}) SELECT *, NULL AS capped_key, NULL AS locked FROM leased "
        f"UNION ALL SELECT id, {pad}, key_cap, flow_key, {LOCK_KEY} "
        "FROM picked WHERE key_cap IS NOT NULL"
    )
    # Planned once per connection, not at every claim: left to choose, PostgreSQL plans
    # the claim afresh each time (its generic plan, costed for an unknown LIMIT, looks
    # dearer than it is), and planning cost more than a small claim's execution. The
    # claim ends the transaction, so nothing else is planned this way.
    tx.execute("SET LOCAL plan_cache_mode = force_generic_plan")
    rows = tx.execute(sql, (*params, room, *lease)).fetchall()
    jobs = [job_from_row(r[:-2]) for r in rows if r[-2] is None]
    held = [(r[0], r[-2], r[-3]) for r in rows if r[-2] is not None]
    if not held:
        return jobs, []
    locked = [(r[0], r[-2], r[-3]) for r in rows if r[-2] is not None and r[-1]]
    rest = room - len(jobs)
    if locked and rest > 0:
        claimed = tx.execute(*lease_admitted(locked, rest, _LEASE, lease, JOB_COLUMNS)).fetchall()
        jobs.extend(job_from_row(r) for r in claimed)
        chosen = [r[0] for r in claimed]
    else:
        chosen = []
    return jobs, _turned_away(held, chosen)


def _turned_away(
    picked: Sequence[tuple[int, str | None, int | None]], chosen: list[int]
) -> list[str]:
    """The keys of picked capped jobs that were not chosen."""
    taken = set(chosen)
    return list(
        dict.fromkeys(
            k for i, k, cap in picked if cap is not None and k is not None and i not in taken
        )
    )


def _lease_ids(tx: Tx, ids: Sequence[int], lease: tuple[object, ...]) -> list[JobRecord]:
    """Lease the pending jobs `ids` (picked, and locked where rows are locked)."""
    if not ids:
        return []
    claimed = tx.execute(
        f"{_LEASE} WHERE id IN ({placeholders(len(ids))}) AND state = 'pending' "
        f"RETURNING {JOB_COLUMNS}",
        (*lease, *ids),
    ).fetchall()
    return [job_from_row(r) for r in claimed]


def leased_by(tx: Tx, ids: Sequence[int], token: str) -> list[JobRecord]:
    """The jobs among `ids` that the claim which wrote `token` leased and still holds, by id.

    Only a claim sets a job running, and every claim writes its own token, so a running row
    with the token is still that claim's lease. The rows are locked by id alone: where another
    transaction still holds one (the claim itself, its commit in flight), this waits for its
    end and reads the row as it left it.
    """
    held: list[JobRecord] = []
    for part in chunks(sorted(ids)):
        for row in tx.execute(
            f"SELECT claim_token, {JOB_COLUMNS} FROM jobs "
            f"WHERE id IN ({placeholders(len(part))}) ORDER BY id{tx.dialect.lock}",
            tuple(part),
        ):
            if row[0] == token and row[5] == "running":
                held.append(job_from_row(row[1:]))
    return held


def next_due_at(tx: Tx) -> float | None:
    """The earliest time a scheduled or suspended job becomes due, or None."""
    row = tx.execute(
        "SELECT min(run_at) FROM jobs WHERE state IN ('scheduled', 'suspended')"
    ).fetchone()
    return float(row[0]) if row and row[0] is not None else None


def top_pending_priority(tx: Tx, domains: Sequence[str], tags: Sequence[str]) -> int | None:
    """The highest base priority among pending jobs a worker with these domains and tags takes
    (a job whose key is at its cap could not start: preempting for it would gain nothing)."""
    if not domains:
        return None
    where, params = _candidate_filter(tx, ClaimRequest("", 1, 1.0, tuple(domains), tuple(tags)))
    row = tx.execute(
        f"SELECT max(base_priority) FROM jobs WHERE {where} AND {CAP_OPEN}", params
    ).fetchone()
    return int(row[0]) if row and row[0] is not None else None
