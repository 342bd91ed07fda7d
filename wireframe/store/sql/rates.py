"""Claims under rate limits, on SQLite and PostgreSQL (see `wireframe.store.rates`).

A claim whose request names rate limits runs here after its housekeeping, in the same
transaction: it serialises on each limit (PostgreSQL: a transaction-scoped advisory lock per
limit, taken in name order before anything else it waits for; SQLite's write lock already
does), reads the buckets that are not full, leaves out of its candidates the jobs of buckets
without a token, admits the rest best first while their tokens last, leases what it admitted
(and the chooser took), stores the buckets' new arrival times and writes the reason of every job
it held back. A claim holding a limit's lock waits for nothing else: its job rows are taken
`SKIP LOCKED`, so the order of `wireframe.store.sql.locks` is kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from wireframe.store.rates import (
    RATE_REASON,
    Candidate,
    Claimed,
    Gate,
    RateLimit,
    RateState,
    claimed,
    stable_part,
    state_of,
)
from wireframe.store.records import ClaimRequest, JobRecord
from wireframe.store.sql.keys import ORDER, admit
from wireframe.store.sql.rows import JOB_COLUMNS, chunks, job_from_row, placeholders
from wireframe.store.sql.tx import Tx

Chooser = Callable[[Sequence[JobRecord]], Sequence[int]]

EXCLUDED_MAX = 64
"""Buckets without a token a claim leaves out by name; jobs of more are skipped as met."""
SCAN_MIN = 32
"""The fewest pending jobs a rated claim looks at in one round (held jobs fill no slot)."""
ROUNDS = 4
"""How many times a rated claim looks again, past the buckets that ran out of tokens."""

_RELEASE_REASON = f"reason = CASE WHEN reason LIKE '{RATE_REASON}%' THEN NULL ELSE reason END "
"""A leased job no longer waits for a token: its rate limit reason goes."""


def claim_rated(
    tx: Tx,
    now: float,
    req: ClaimRequest,
    chooser: Chooser | None,
    token: str | None,
    candidates: tuple[str, list[object]],
    lease: str,
) -> Claimed:
    """Lease up to `req.limit` of the jobs `candidates` (a WHERE clause and its parameters)
    selects that the rate limits admit, with the `lease` statement (its SET clause)."""
    where, params = candidates
    limits = sorted(req.rates, key=lambda lim: lim.name)
    for limit in limits:
        tx.dialect.lock_name(tx, f"wireframe rate limit {limit.name}")
    _record_policies(tx, limits)
    gate = Gate(limits, _open_buckets(tx, now, limits), now)
    scan = _Scan(gate, req.limit)
    closed = {(limit.name, key) for limit, key in gate.exhausted()}
    size = max(req.scan, req.limit * 4, SCAN_MIN)
    for _ in range(ROUNDS):
        clause, args = _leave_out(gate, closed, scan.found, where, params)
        rows = tx.execute(
            f"SELECT rate_key, cost, {JOB_COLUMNS} FROM jobs WHERE {clause} "
            f"ORDER BY {ORDER} LIMIT ?{tx.dialect.skip_locked}",
            (*args, size),
        ).fetchall()
        scan.add(rows)
        if scan.full or len(rows) < size:
            break
        closed |= gate.blocked  # look past the jobs of buckets out of tokens
    chosen = _choose(scan.admitted, chooser, req.limit)
    by_id = {job.id: job for job in scan.admitted}  # the keys' caps have the last word
    chosen = admit(tx, [(i, by_id[i].flow_key, by_id[i].key_cap) for i in chosen], req.limit)
    jobs = _lease(tx, now, req, chosen, token, lease)
    _store_buckets(tx, gate.commit(scan.found[job.id] for job in jobs))
    _write_reasons(tx, gate.held, scan.reasons, refresh=bool(jobs))
    return claimed(jobs, gate.retry_in)


class _Scan:
    """The candidates one rated claim looked at, and those its gate admitted, best first."""

    def __init__(self, gate: Gate, limit: int) -> None:
        self.gate = gate
        self.limit = limit
        self.admitted: list[JobRecord] = []
        self.found: dict[int, Candidate] = {}
        self.reasons: dict[int, str | None] = {}

    @property
    def full(self) -> bool:
        """True once as many jobs as the claim wants are admitted."""
        return len(self.admitted) >= self.limit

    def add(self, rows: Sequence[Sequence[Any]]) -> None:
        """Look at rows of (rate_key, cost, JOB_COLUMNS...), admitting while there is room."""
        for row in rows:
            job = job_from_row(row[2:])
            self.reasons[job.id] = job.reason
            cand = Candidate(job.id, job.domain, job.type, row[0], int(row[1]))
            self.found[job.id] = cand
            if not self.full and self.gate.admit(cand):
                self.admitted.append(job)


def _choose(admitted: list[JobRecord], chooser: Chooser | None, limit: int) -> list[int]:
    """The ids to lease: the chooser's pick among the admitted jobs, or all of them."""
    if chooser is None or not admitted:
        return [job.id for job in admitted]
    allowed = {job.id for job in admitted}
    return list(dict.fromkeys(i for i in chooser(admitted) if i in allowed))[:limit]


def _lease(
    tx: Tx, now: float, req: ClaimRequest, chosen: list[int], token: str | None, lease: str
) -> list[JobRecord]:
    if not chosen:
        return []
    rows = tx.execute(
        f"{lease}, {_RELEASE_REASON}WHERE id IN ({placeholders(len(chosen))}) "
        f"AND state = 'pending' RETURNING {JOB_COLUMNS}",
        (req.worker_id, now + req.lease_ttl, token, now, now, *chosen),
    ).fetchall()
    order = {job_id: i for i, job_id in enumerate(chosen)}
    return sorted((job_from_row(r) for r in rows), key=lambda j: order[j.id])


def _record_policies(tx: Tx, limits: Sequence[RateLimit]) -> None:
    """Record each limit's policy where it changed (tools and metrics read it)."""
    names = [lim.name for lim in limits]
    stored = {
        row[0]: tuple(row[1:])
        for row in tx.execute(
            f"SELECT name, count, per, burst, keyed FROM rate_limits "
            f"WHERE name IN ({placeholders(len(names))})",
            names,
        )
    }
    for lim in limits:
        policy = (lim.count, float(lim.per), lim.burst, int(lim.keyed))
        if stored.get(lim.name) != policy:
            tx.execute(
                "INSERT INTO rate_limits (name, count, per, burst, keyed) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET count = excluded.count, per = excluded.per, "
                "burst = excluded.burst, keyed = excluded.keyed",
                (lim.name, *policy),
            )


def _open_buckets(tx: Tx, now: float, limits: Sequence[RateLimit]) -> dict[tuple[str, str], float]:
    """The buckets of these limits that are not full now, with their arrival times."""
    names = [lim.name for lim in limits]
    return {
        (row[0], row[1]): float(row[2])
        for row in tx.execute(
            f"SELECT name, key, tat FROM rate_buckets "
            f"WHERE name IN ({placeholders(len(names))}) AND tat > ?",
            (*names, now),
        )
    }


def _leave_out(
    gate: Gate,
    buckets: set[tuple[str, str]],
    seen: Iterable[int],
    where: str,
    params: list[object],
) -> tuple[str, list[object]]:
    """`where`, leaving out the jobs of `buckets` (out of tokens) and those already `seen`."""
    clauses, args = [where], list(params)
    for name, key in sorted(buckets)[:EXCLUDED_MAX]:
        limit = gate.by_domain.get(name) or gate.by_type.get(name)
        if limit is None:
            continue
        column = "domain" if limit.scope == "domain" else "type"
        if limit.keyed:
            clauses.append(f"NOT ({column} = ? AND coalesce(rate_key, '') = ?)")
            args.extend((name, key))
        else:
            clauses.append(f"{column} <> ?")
            args.append(name)
    ids = list(seen)
    if ids:
        clauses.append(f"id NOT IN ({placeholders(len(ids))})")
        args.extend(ids)
    return " AND ".join(clauses), args


def _store_buckets(tx: Tx, tats: dict[tuple[str, str], float]) -> None:
    if tats:
        tx.executemany(
            "INSERT INTO rate_buckets (name, key, tat) VALUES (?, ?, ?) "
            "ON CONFLICT (name, key) DO UPDATE SET tat = excluded.tat",
            [(name, key, tat) for (name, key), tat in sorted(tats.items())],
        )


def _write_reasons(
    tx: Tx, held: dict[int, str], stored: dict[int, str | None], *, refresh: bool
) -> None:
    """Say why each held job waits (its rows are locked by this claim's SELECT).

    A claim that leased jobs writes anyway, so it `refresh`es every reason's wait. One that
    only holds jobs leaves the reason of a job the same limit held before as it was: it writes
    nothing then, so other workers (SQLite wakes them on any commit) are not woken for it.
    """
    by_reason: dict[str, list[int]] = {}
    for job_id, reason in held.items():
        before = stored.get(job_id)
        if before == reason:
            continue
        if not refresh and before is not None and stable_part(before) == stable_part(reason):
            continue
        by_reason.setdefault(reason, []).append(job_id)
    for reason, ids in by_reason.items():
        for part in chunks(sorted(ids)):
            tx.execute(
                f"UPDATE jobs SET reason = ? WHERE id IN ({placeholders(len(part))}) "
                "AND state = 'pending'",
                (reason, *part),
            )


def rate_states(tx: Tx, now: float) -> list[RateState]:
    """Every limit a claim recorded, with its buckets and held jobs now, by name."""
    out: list[RateState] = []
    for name, count, per, burst, keyed in tx.execute(
        "SELECT name, count, per, burst, keyed FROM rate_limits ORDER BY name"
    ).fetchall():
        scope: Literal["domain", "type"] = "type" if "::" in name else "domain"
        limit = RateLimit(name, scope, int(count), float(per), int(burst), bool(keyed))
        tats = [
            float(row[0])
            for row in tx.execute(
                "SELECT tat FROM rate_buckets WHERE name = ? AND tat > ?", (name, now)
            )
        ]
        plain, keyed_ = f"{RATE_REASON}{name}:", f"{RATE_REASON}{name} (key "
        held = tx.execute(
            "SELECT count(*) FROM jobs WHERE state = 'pending' AND reason IS NOT NULL "
            "AND (substr(reason, 1, ?) = ? OR substr(reason, 1, ?) = ?)",
            (len(plain), plain, len(keyed_), keyed_),
        ).fetchone()[0]
        out.append(state_of(limit, tats, now, int(held)))
    return out


FULL_KEPT = 60.0
"""Seconds a full bucket's row stays before housekeeping deletes it (a full bucket and no row
mean the same: a limit's keys come and go without their rows piling up)."""


def forget_full_buckets(tx: Tx, now: float) -> None:
    """Delete the rows of buckets that have been full for `FULL_KEPT` seconds (housekeeping;
    rows a claim holds are skipped, never waited for)."""
    tx.execute(
        "DELETE FROM rate_buckets WHERE (name, key) IN (SELECT name, key FROM rate_buckets "
        f"WHERE tat <= ?{tx.dialect.skip_locked})",
        (now - FULL_KEPT,),
    )
