"""Concurrency keys on SQL: turn stamps at submission, the cap inside the claim transaction.

Fair share. A keyed job is stamped when it is inserted (`Stamper`): one turn (`stride(weight)`)
after the key's last pending job, or, for a key with nothing pending, at the current turn of
its priority (the smallest stamp pending there). Claims take pending jobs by `(priority DESC,
fair_seq, id)` from one index, so a claim costs the same whatever the number of keys, and a
key that arrives behind another key's backlog waits at most one turn of each active key. Jobs
without a key have stamp 0: among themselves they keep their submission order.

The cap. A key's running jobs are counted from the index of running keyed jobs (at most `cap`
entries are read per key), so every way a job stops running (completion, failure, retry, lease
reclaim, preemption, suspension, waiting for children, pause, cancellation) frees its place with
no bookkeeping of its own. The claim's pick skips jobs whose key is at its cap; `admit` then
decides, inside the claim transaction, which picked keyed jobs may start: PostgreSQL first takes
a transaction advisory lock per key (without waiting: a key another claim is deciding is left
to it), then counts with a fresh snapshot, so concurrent claims on many workers never exceed a
cap; SQLite's single writer already serialises claims.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence

from wireframe.store.flowkeys import stride
from wireframe.store.records import NewJob
from wireframe.store.sql.rows import chunks, placeholders
from wireframe.store.sql.tx import Tx

CAP_OPEN = (
    "(key_cap IS NULL OR (SELECT count(*) FROM jobs r WHERE r.flow_key = jobs.flow_key "
    "AND r.state = 'running' AND r.flow_key IS NOT NULL) < key_cap)"
)
"""Claim condition: the job has no cap, or its key runs fewer jobs than its cap."""
ORDER = "priority DESC, fair_seq, id"
"""The claim order: priority, then turns (fair share), then submission."""
_LOCK_CLASS = 0x57464B
"""The first half of the two-int advisory locks of keys (a key space of their own)."""
LOCK_KEY = f"pg_try_advisory_xact_lock({_LOCK_CLASS}, hashtext(flow_key))"
"""PostgreSQL: take the transaction lock of a row's key without waiting; True if taken."""


class Stamper:
    """Stamps the keyed jobs of one submission (reads only: call before inserting them)."""

    def __init__(self, tx: Tx, jobs: Sequence[NewJob] = ()) -> None:
        self.tx = tx
        self.last: dict[str, int | None] = {}
        self.turn: dict[int, int] = {}
        keys = sorted({job.flow_key for job in jobs if job.flow_key is not None})
        if len(keys) > 1:
            self._prefetch(keys)

    def _prefetch(self, keys: list[str]) -> None:
        """The last pending stamp of each key, a few statements for a whole batch."""
        self.last.update(dict.fromkeys(keys))
        for part in chunks(keys):
            for key, last in self.tx.execute(
                "SELECT flow_key, max(fair_seq) FROM jobs WHERE state = 'pending' "
                f"AND flow_key IS NOT NULL AND flow_key IN ({placeholders(len(part))}) "
                "GROUP BY flow_key",
                tuple(part),
            ):
                self.last[key] = int(last)

    def stamp(self, job: NewJob) -> int:
        """The `fair_seq` of `job` (0 without a key)."""
        key = job.flow_key
        if key is None:
            return 0
        if key not in self.last:
            row = self.tx.execute(
                "SELECT max(fair_seq) FROM jobs WHERE flow_key = ? AND state = 'pending' "
                "AND flow_key IS NOT NULL",
                (key,),
            ).fetchone()
            self.last[key] = None if row is None or row[0] is None else int(row[0])
        last = self.last[key]
        step = stride(job.key_weight)
        seq = (
            max(last + step, self._turn(job.priority))
            if last is not None
            else self._turn(job.priority)
        )
        self.last[key] = seq
        return seq

    def _turn(self, priority: int) -> int:
        """The current turn of a priority: its smallest keyed stamp pending (1 if none)."""
        found = self.turn.get(priority)
        if found is None:
            row = self.tx.execute(
                f"SELECT fair_seq FROM jobs WHERE state = 'pending' AND priority = ? "
                f"AND fair_seq > 0 ORDER BY {ORDER} LIMIT 1",
                (priority,),
            ).fetchone()
            found = self.turn[priority] = int(row[0]) if row else 1
        return found


# The uniform INSERT of `wireframe.store.sql.submit` for keyed jobs: the payload, the key and the
# stamp of each job arrive as one JSON array of triples; every other column is bound once.
# SQLite: the ids are consecutive (`?1 + key`). The bound key and stamp (?25, ?27) stand in
# for a triple's missing ones, which never happens.
_INSERT_KEYED = (
    "INSERT INTO {columns} SELECT ?1 + key, ?2, ?3, json_extract(value, '$[0]'), "
    + ", ".join(f"?{i}" for i in range(5, 25))
    + ", coalesce(json_extract(value, '$[1]'), ?25), ?26, "
    "coalesce(json_extract(value, '$[2]'), ?27), ?28, ?29, ?30 FROM json_each(?4)"
)
# PostgreSQL: the ids (from a sequence) arrive as an array literal, the payloads as a JSON
# array, the keys and stamps as arrays; the four are zipped in order.
_INSERT_KEYED_PG = (
    "INSERT INTO {columns} SELECT v.id, ?, ?, v.payload, "
    + ", ".join("?" for _ in range(20))
    + ", v.flow_key, ?, v.fair_seq, ?, ?, ? FROM unnest(?::bigint[], "
    "ARRAY(SELECT p FROM json_array_elements_text(?::json) WITH ORDINALITY AS e(p, n) "
    "ORDER BY n), ?::text[], ?::bigint[]) AS v(id, payload, flow_key, fair_seq)"
)


def insert_keyed(
    tx: Tx, columns: str, params: list[object], ids: Sequence[int], jobs: Sequence[NewJob]
) -> None:
    """Insert a uniform batch of keyed jobs into `columns` (`jobs (id, type, ...)`, the order
    of `params`: the first job's INSERT_JOB row)."""
    stamper = Stamper(tx, jobs)
    if tx.dialect.name == "sqlite":
        params[3] = json.dumps(
            [[job.payload, job.flow_key, stamper.stamp(job)] for job in jobs], ensure_ascii=False
        )
        tx.execute(_INSERT_KEYED.format(columns=columns), params)
    else:
        array = "{" + ",".join(map(str, ids)) + "}"
        payloads = json.dumps([job.payload for job in jobs], ensure_ascii=False)
        keys = [job.flow_key for job in jobs]
        seqs = [stamper.stamp(job) for job in jobs]
        after = params[27:30]  # rate_key, cost, meta: the same for the whole batch
        args = (*params[1:3], *params[4:24], params[25], *after, array, payloads, keys, seqs)
        tx.execute(_INSERT_KEYED_PG.format(columns=columns), args)


def admit(tx: Tx, picked: Sequence[tuple[int, str | None, int | None]], room: int) -> list[int]:
    """The ids among `picked` (id, key, cap; in claim order) that may start, at most `room`.

    A job without a cap always may; one with a cap only while its key, counting the jobs
    admitted before it, runs fewer than the cap.
    """
    capped = sorted({key for _, key, cap in picked if cap is not None and key is not None})
    running: dict[str, int] = {}
    if capped:
        open_keys = _lock(tx, capped)
        running = {key: 0 for key in open_keys}
        running.update(running_counts(tx, open_keys))
    out: list[int] = []
    for job_id, key, cap in picked:
        if len(out) >= room:
            break
        if cap is None or key is None:
            out.append(job_id)
            continue
        held = running.get(key)
        if held is None or held >= cap:
            continue
        running[key] = held + 1
        out.append(job_id)
    return out


def lease_admitted(
    picked: Sequence[tuple[int, str | None, int | None]],
    room: int,
    lease_sql: str,
    lease: tuple[object, ...],
    columns: str,
) -> tuple[str, tuple[object, ...]]:
    """PostgreSQL: one statement leasing, of `picked` (id, key, cap; in claim order, their
    keys' locks held), up to `room` jobs whose key runs fewer jobs than its cap, counting
    those before them. Run after the locks were taken, it counts with a snapshot that sees
    every lease committed by the claims that held them before."""
    args = ([p[0] for p in picked], [p[1] for p in picked], [p[2] for p in picked])
    sql = (
        "WITH cand AS (SELECT * FROM unnest(?::bigint[], ?::text[], ?::integer[]) "
        "WITH ORDINALITY AS c(id, flow_key, key_cap, ord)), "
        "ranked AS (SELECT id, flow_key, key_cap, ord, "
        "row_number() OVER (PARTITION BY flow_key ORDER BY ord) AS rn FROM cand), "
        "busy AS (SELECT flow_key, count(*) AS n FROM jobs WHERE state = 'running' "
        "AND flow_key IS NOT NULL AND flow_key IN (SELECT flow_key FROM cand) "
        "GROUP BY flow_key), "
        "chosen AS (SELECT r.id FROM ranked r LEFT JOIN busy b ON b.flow_key = r.flow_key "
        "WHERE coalesce(b.n, 0) + r.rn <= r.key_cap ORDER BY r.ord LIMIT ?) "
        f"{lease_sql} WHERE id = ANY(ARRAY(SELECT id FROM chosen)) AND state = 'pending' "
        f"RETURNING {columns}"
    )
    return sql, (*args, room, *lease)


def _lock(tx: Tx, keys: list[str]) -> list[str]:
    """The keys this transaction may decide on: on PostgreSQL, those whose lock it got."""
    if not tx.dialect.lock:
        return keys
    got: list[str] = []
    for part in chunks(keys):
        values = ",".join("(?)" for _ in part)
        got.extend(
            row[0]
            for row in tx.execute(
                f"SELECT k FROM (VALUES {values}) AS v(k) "
                f"WHERE pg_try_advisory_xact_lock({_LOCK_CLASS}, hashtext(k))",
                tuple(part),
            )
        )
    return got


def running_counts(tx: Tx, keys: Iterable[str]) -> dict[str, int]:
    """How many jobs of each key run (keys with none are left out)."""
    wanted = list(keys)
    counts: dict[str, int] = {}
    for part in chunks(wanted):
        for key, n in tx.execute(
            "SELECT flow_key, count(*) FROM jobs WHERE state = 'running' "
            f"AND flow_key IS NOT NULL AND flow_key IN ({placeholders(len(part))}) "
            "GROUP BY flow_key",
            tuple(part),
        ):
            counts[key] = int(n)
    return counts


def key_stats(tx: Tx) -> list[tuple[str, str, int, int]]:
    """Per (domain, type) with keyed jobs: pending jobs held by their key's cap, and the most
    jobs one key runs. Reads every running keyed job and every capped pending one."""
    running: dict[str, int] = {}
    tops: dict[tuple[str, str], int] = {}
    for domain, type_, key, n in tx.execute(
        "SELECT domain, type, flow_key, count(*) FROM jobs WHERE state = 'running' "
        "AND flow_key IS NOT NULL GROUP BY domain, type, flow_key"
    ):
        running[key] = running.get(key, 0) + int(n)
        tops[(domain, type_)] = max(tops.get((domain, type_), 0), int(n))
    waiting: dict[tuple[str, str], int] = {}
    for domain, type_, key, cap, n in tx.execute(
        "SELECT domain, type, flow_key, key_cap, count(*) FROM jobs WHERE state = 'pending' "
        "AND flow_key IS NOT NULL AND key_cap IS NOT NULL GROUP BY domain, type, flow_key, key_cap"
    ):
        if running.get(key, 0) >= cap:
            waiting[(domain, type_)] = waiting.get((domain, type_), 0) + int(n)
    pairs = sorted(set(tops) | set(waiting))
    return [(d, t, waiting.get((d, t), 0), tops.get((d, t), 0)) for d, t in pairs]
