"""Versioned schema migrations; each step runs once, in order, recorded in `schema_version`."""

from __future__ import annotations

from wireframe.store.errors import SchemaVersionError
from wireframe.store.sql.tx import Tx

TERMINAL_SQL = "('completed','failed','cancelled','expired','dependency_failed')"

MIGRATIONS: tuple[str, ...] = (
    # 1: jobs, dependencies, attempts, schedules. Indexes only what the hot paths need (claim,
    # due jobs, leases, expiry, dedup, children, pruning): each one costs every state change.
    f"""
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        type TEXT NOT NULL,
        domain TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        base_priority INTEGER NOT NULL,
        key TEXT,
        parent_id INTEGER,
        tags TEXT,
        resources TEXT,
        created_at REAL NOT NULL,
        run_at REAL NOT NULL,
        ready_at REAL NOT NULL,
        started_at REAL,
        finished_at REAL,
        expires_at REAL,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        retry_budget INTEGER NOT NULL,
        new_attempt INTEGER NOT NULL DEFAULT 1,
        claim_seq INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT,
        lease_expires_at REAL,
        result TEXT,
        error TEXT,
        traceback TEXT,
        reason TEXT,
        progress REAL,
        progress_message TEXT,
        on_dep_failure TEXT NOT NULL,
        fail_fast INTEGER NOT NULL,
        phase TEXT NOT NULL DEFAULT 'execute',
        needs_finalize INTEGER NOT NULL DEFAULT 0,
        active_children INTEGER NOT NULL DEFAULT 0,
        child_failed INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        pause_requested INTEGER NOT NULL DEFAULT 0,
        paused_from TEXT,
        schedule_id INTEGER
    );
    CREATE INDEX jobs_pending ON jobs (priority DESC, id) WHERE state = 'pending';
    CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('scheduled', 'suspended');
    CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
    CREATE INDEX jobs_expiry ON jobs (expires_at)
        WHERE expires_at IS NOT NULL AND state IN ('pending', 'scheduled', 'blocked');
    CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE UNIQUE INDEX jobs_active_key ON jobs (type, key)
        WHERE key IS NOT NULL AND state NOT IN {TERMINAL_SQL};
    CREATE TABLE job_deps (
        job_id INTEGER NOT NULL,
        dep_id INTEGER NOT NULL,
        PRIMARY KEY (job_id, dep_id)
    ) WITHOUT ROWID;
    CREATE INDEX job_deps_dep ON job_deps (dep_id);
    CREATE TABLE attempts (
        job_id INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        worker_id TEXT,
        started_at REAL NOT NULL,
        finished_at REAL,
        outcome TEXT,
        error TEXT,
        PRIMARY KEY (job_id, attempt)
    ) WITHOUT ROWID;
    CREATE TABLE schedules (
        id INTEGER PRIMARY KEY,
        type TEXT NOT NULL,
        domain TEXT NOT NULL,
        template TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        next_run_at REAL,
        occurrences INTEGER NOT NULL,
        max_occurrences INTEGER,
        last_job_id INTEGER,
        created_at REAL NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (next_run_at) WHERE state = 'active';
    """,
    # 2: durable jobs: checkpoints, events, and what a suspended job waits for.
    """
    ALTER TABLE jobs ADD COLUMN wait_for TEXT;
    CREATE INDEX jobs_wait_for ON jobs (wait_for) WHERE wait_for IS NOT NULL;
    CREATE TABLE checkpoints (
        job_id INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT,
        created_at REAL NOT NULL,
        PRIMARY KEY (job_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        name TEXT PRIMARY KEY,
        payload TEXT,
        emitted_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 3: a flag on each job that other jobs depend on, so ending a job nobody waits for skips
    # the dependents query (the hot path of every completion).
    """
    ALTER TABLE jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET has_dependents = 1 WHERE id IN (SELECT dep_id FROM job_deps)
    """,
    # 4: the dependencies a blocked job waits on (a JSON list of ids), kept after its edges are
    # gone so that retrying it re-checks them; NULL once they were all met. Backfilled from the
    # edges of blocked jobs, and for jobs that already ended because of a dependency, from the
    # error naming it ("dependency job <id> ended as <state>").
    """
    ALTER TABLE jobs ADD COLUMN deps TEXT;
    UPDATE jobs SET deps = (SELECT json_group_array(d.dep_id) FROM job_deps d
        WHERE d.job_id = jobs.id) WHERE id IN (SELECT job_id FROM job_deps);
    UPDATE jobs SET deps = '[' || substr(error, 16, instr(error, ' ended as ') - 16) || ']'
        WHERE deps IS NULL AND state IN ('dependency_failed', 'cancelled')
        AND error GLOB 'dependency job [0-9]* ended as *'
        AND substr(error, 16, instr(error, ' ended as ') - 16) NOT GLOB '*[^0-9]*'
    """,
    # 5: the token of the claim that leased a running job. PostgreSQL looks a claim up by it when
    # its COMMIT went unacknowledged; SQLite's commits are never in doubt and leave it NULL.
    """
    ALTER TABLE jobs ADD COLUMN claim_token TEXT
    """,
    # 6: the index of leases covers the rows that hold one (exactly the running jobs), named by
    # the lease column instead of the state. A lookup by id that also says `state = 'running'`
    # then cannot take it for a cheaper path than the primary key (PostgreSQL did, with
    # statistics from before the jobs started running, and read every running job each time).
    """
    DROP INDEX jobs_lease;
    CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL
    """,
    # 7: when the running attempt began, on the job itself: its `attempts` row is written once,
    # when the attempt ends (a claim no longer inserts one that the end updates). Jobs running
    # at the upgrade already have their open row; they take its start time.
    """
    ALTER TABLE jobs ADD COLUMN attempt_started_at REAL;
    UPDATE jobs SET attempt_started_at = (SELECT a.started_at FROM attempts a
        WHERE a.job_id = jobs.id AND a.attempt = jobs.attempt) WHERE state = 'running'
    """,
    # 8: a lost worker (an expired lease) spends the job's reclaim budget, not its retry
    # policy's attempts: `reclaims` counts them, `max_reclaims` bounds them. And a ttl bounds
    # only the wait before a job's first start: a claim clears `expires_at`. Jobs that started
    # under an earlier version lose theirs too, so one a claim skipped as past its ttl (while
    # expiry skipped it as started: pending for ever) is claimable again. Reclaims recorded
    # before this version stay counted as attempts, as they were.
    """
    ALTER TABLE jobs ADD COLUMN reclaims INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN max_reclaims INTEGER NOT NULL DEFAULT 3;
    UPDATE jobs SET expires_at = NULL WHERE started_at IS NOT NULL AND expires_at IS NOT NULL
    """,
    # 9: nothing on SQLite (PostgreSQL's commit tokens: a SQLite commit is never in doubt).
    "",
    # 10: a blocked job's ttl counts from when its dependencies complete, so expiry looks at
    # pending and scheduled jobs only; the index of ttls says so in the very words of the
    # query (SQLite uses a partial index only for a query that repeats its condition).
    """
    DROP INDEX jobs_expiry;
    CREATE INDEX jobs_expiry ON jobs (expires_at)
        WHERE expires_at IS NOT NULL AND state IN ('pending', 'scheduled')
    """,
    # 11: aging keeps its own clock, `aged_at` (when it last raised the job's priority), so
    # `ready_at` stays when the job became ready to run: the queue-wait metrics read it. Until
    # now aging moved `ready_at`; a pending job it raised keeps that time as both (its true
    # readiness is lost: it looks younger than it is until it next runs).
    """
    ALTER TABLE jobs ADD COLUMN aged_at REAL;
    UPDATE jobs SET aged_at = ready_at WHERE state = 'pending' AND priority > base_priority
    """,
    # 12: a schedule's overlap policy (what a firing does while its previous run has not
    # ended: skip, queue or allow) and the count of firings it skipped. Existing schedules take
    # the default, skip: until now a firing was skipped only while the previous run had not
    # started, so runs piled up behind a slow one.
    """
    ALTER TABLE schedules ADD COLUMN overlap TEXT NOT NULL DEFAULT 'skip';
    ALTER TABLE schedules ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE schedules ADD COLUMN last_skipped_at REAL
    """,
    # 13: the workers: each live worker's row, written when it starts, refreshed on its heartbeat
    # cadence, deleted when it stops; `wireframe workers` lists them and `wireframe job` says
    # when no live worker can take a pending job. Domains, tags, resources are JSON.
    """
    CREATE TABLE workers (
        worker_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        domains TEXT NOT NULL,
        tags TEXT NOT NULL,
        resources TEXT NOT NULL,
        held INTEGER NOT NULL,
        ttl REAL NOT NULL,
        started_at REAL NOT NULL,
        heartbeat_at REAL NOT NULL
    )
    """,
    # 14: the job types workers record when they start: the description of each payload's
    # fields and the type's settings (JSON), so tools without the handlers' code (`wireframe
    # submit`, `wireframe types`) know them.
    """
    CREATE TABLE job_types (
        type TEXT PRIMARY KEY,
        domain TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        settings TEXT NOT NULL,
        recorded_by TEXT NOT NULL,
        recorded_at REAL NOT NULL
    ) WITHOUT ROWID
    """,
    # 15: rate limits kept in the database (`wireframe.store.rates`): each job's bucket key and
    # cost in tokens, one row per limit (locked by a claim that applies it, so claims of one
    # limit take turns, and recording the policy last applied) and the theoretical arrival time
    # of each bucket (one per limit and key; the key is '' for a limit without one).
    """
    ALTER TABLE jobs ADD COLUMN rate_key TEXT;
    ALTER TABLE jobs ADD COLUMN cost INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE rate_limits (
        name TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        per REAL NOT NULL,
        burst INTEGER NOT NULL,
        keyed INTEGER NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE rate_buckets (
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        tat REAL NOT NULL,
        PRIMARY KEY (name, key)
    ) WITHOUT ROWID
    """,
    # 16: metadata that travels with a job (`meta`: a JSON object of str to str, NULL when
    # empty): trace context and what middleware or the caller adds at submission.
    "ALTER TABLE jobs ADD COLUMN meta TEXT",
    # 17: debounce, throttle and flow pauses. A dedup key is unique among the active jobs that
    # have not started (the waiting one a debounced submit replaces); a job that has started
    # keeps its key while a debounced submit queues the next run beside it. The lookup index
    # of active keys stays. `paused_flows`: paused domains and job types, read by every claim.
    # `job_throttles`: per (type, key), until when a throttled submit is refused, and the job
    # its last accepted submit created.
    f"""
    DROP INDEX jobs_active_key;
    CREATE INDEX jobs_active_key ON jobs (type, key)
        WHERE key IS NOT NULL AND state NOT IN {TERMINAL_SQL};
    CREATE UNIQUE INDEX jobs_waiting_key ON jobs (type, key)
        WHERE key IS NOT NULL AND state NOT IN {TERMINAL_SQL} AND started_at IS NULL;
    CREATE TABLE paused_flows (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        paused_at REAL NOT NULL,
        PRIMARY KEY (kind, name)
    ) WITHOUT ROWID;
    CREATE TABLE job_throttles (
        type TEXT NOT NULL,
        key TEXT NOT NULL,
        until REAL NOT NULL,
        job_id INTEGER NOT NULL,
        PRIMARY KEY (type, key)
    ) WITHOUT ROWID;
    CREATE INDEX job_throttles_until ON job_throttles (until)
    """,
    # 18: concurrency keys and fair share (`wireframe.store.flowkeys`): a keyed job's scoped
    # key, its cap and its turn stamp. Pending jobs are claimed by (priority, stamp, id): jobs
    # without a key (stamp 0, every job until now) keep their order. Running keyed jobs are
    # indexed by key so a claim counts a key's running jobs by reading at most its cap of
    # entries; pending ones by key and stamp, so a submission finds the key's last turn.
    """
    ALTER TABLE jobs ADD COLUMN flow_key TEXT;
    ALTER TABLE jobs ADD COLUMN key_cap INTEGER;
    ALTER TABLE jobs ADD COLUMN fair_seq INTEGER NOT NULL DEFAULT 0;
    DROP INDEX jobs_pending;
    CREATE INDEX jobs_pending ON jobs (priority DESC, fair_seq, id) WHERE state = 'pending';
    CREATE INDEX jobs_key_running ON jobs (flow_key)
        WHERE state = 'running' AND flow_key IS NOT NULL;
    CREATE INDEX jobs_key_pending ON jobs (flow_key, fair_seq)
        WHERE state = 'pending' AND flow_key IS NOT NULL
    """,
)

PG_MIGRATIONS: tuple[str, ...] = (
    # 1: the same tables on PostgreSQL (in the store's own schema, via search_path). Ids come
    # from sequences; times are epoch seconds as double precision; flags stay integers so the
    # one engine reads and writes the same values on both databases.
    f"""
    CREATE SEQUENCE jobs_id_seq;
    CREATE TABLE jobs (
        id BIGINT PRIMARY KEY DEFAULT nextval('jobs_id_seq'),
        type TEXT NOT NULL,
        domain TEXT NOT NULL,
        payload TEXT NOT NULL,
        state TEXT NOT NULL,
        priority INTEGER NOT NULL,
        base_priority INTEGER NOT NULL,
        key TEXT,
        parent_id BIGINT,
        tags TEXT,
        resources TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        run_at DOUBLE PRECISION NOT NULL,
        ready_at DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        expires_at DOUBLE PRECISION,
        attempt INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL,
        retry_budget INTEGER NOT NULL,
        new_attempt INTEGER NOT NULL DEFAULT 1,
        claim_seq INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT,
        lease_expires_at DOUBLE PRECISION,
        result TEXT,
        error TEXT,
        traceback TEXT,
        reason TEXT,
        progress DOUBLE PRECISION,
        progress_message TEXT,
        on_dep_failure TEXT NOT NULL,
        fail_fast INTEGER NOT NULL,
        phase TEXT NOT NULL DEFAULT 'execute',
        needs_finalize INTEGER NOT NULL DEFAULT 0,
        active_children INTEGER NOT NULL DEFAULT 0,
        child_failed INTEGER NOT NULL DEFAULT 0,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        pause_requested INTEGER NOT NULL DEFAULT 0,
        paused_from TEXT,
        schedule_id BIGINT
    );
    ALTER SEQUENCE jobs_id_seq OWNED BY jobs.id;
    CREATE INDEX jobs_pending ON jobs (priority DESC, id) WHERE state = 'pending';
    CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('scheduled', 'suspended');
    CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state = 'running';
    CREATE INDEX jobs_expiry ON jobs (expires_at)
        WHERE expires_at IS NOT NULL AND state IN ('pending', 'scheduled', 'blocked');
    CREATE INDEX jobs_parent ON jobs (parent_id) WHERE parent_id IS NOT NULL;
    CREATE INDEX jobs_finished ON jobs (finished_at) WHERE finished_at IS NOT NULL;
    CREATE UNIQUE INDEX jobs_active_key ON jobs (type, key)
        WHERE key IS NOT NULL AND state NOT IN {TERMINAL_SQL};
    CREATE TABLE job_deps (
        job_id BIGINT NOT NULL,
        dep_id BIGINT NOT NULL,
        PRIMARY KEY (job_id, dep_id)
    );
    CREATE INDEX job_deps_dep ON job_deps (dep_id);
    CREATE TABLE attempts (
        job_id BIGINT NOT NULL,
        attempt INTEGER NOT NULL,
        worker_id TEXT,
        started_at DOUBLE PRECISION NOT NULL,
        finished_at DOUBLE PRECISION,
        outcome TEXT,
        error TEXT,
        PRIMARY KEY (job_id, attempt)
    );
    CREATE TABLE schedules (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        type TEXT NOT NULL,
        domain TEXT NOT NULL,
        template TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        next_run_at DOUBLE PRECISION,
        occurrences INTEGER NOT NULL,
        max_occurrences INTEGER,
        last_job_id BIGINT,
        created_at DOUBLE PRECISION NOT NULL
    );
    CREATE INDEX schedules_due ON schedules (next_run_at) WHERE state = 'active';
    """,
    # 2: durable jobs: checkpoints, events, and what a suspended job waits for.
    """
    ALTER TABLE jobs ADD COLUMN wait_for TEXT;
    CREATE INDEX jobs_wait_for ON jobs (wait_for) WHERE wait_for IS NOT NULL;
    CREATE TABLE checkpoints (
        job_id BIGINT NOT NULL,
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        value TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (job_id, seq)
    );
    CREATE TABLE events (
        name TEXT PRIMARY KEY,
        payload TEXT,
        emitted_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 3: a flag on each job that other jobs depend on, so ending a job nobody waits for skips
    # the dependents query (the hot path of every completion).
    """
    ALTER TABLE jobs ADD COLUMN has_dependents INTEGER NOT NULL DEFAULT 0;
    UPDATE jobs SET has_dependents = 1 WHERE id IN (SELECT dep_id FROM job_deps)
    """,
    # 4: the dependencies a blocked job waits on (see the SQLite version).
    """
    ALTER TABLE jobs ADD COLUMN deps TEXT;
    UPDATE jobs SET deps = (SELECT json_agg(d.dep_id ORDER BY d.dep_id)::text FROM job_deps d
        WHERE d.job_id = jobs.id) WHERE id IN (SELECT job_id FROM job_deps);
    UPDATE jobs SET deps = '[' || substring(error from '^dependency job ([0-9]+) ended as ') || ']'
        WHERE deps IS NULL AND state IN ('dependency_failed', 'cancelled')
        AND error ~ '^dependency job [0-9]+ ended as '
    """,
    # 5: the token of the claim that leased a running job: a claim whose COMMIT went
    # unacknowledged is looked up by it (`PostgresStore.claim`) rather than left to expire.
    """
    ALTER TABLE jobs ADD COLUMN claim_token TEXT
    """,
    # 6: the index of leases, by the lease column rather than the state (see the SQLite version).
    """
    DROP INDEX jobs_lease;
    CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE lease_expires_at IS NOT NULL
    """,
    # 7: when the running attempt began (see the SQLite version).
    """
    ALTER TABLE jobs ADD COLUMN attempt_started_at DOUBLE PRECISION;
    UPDATE jobs SET attempt_started_at = (SELECT a.started_at FROM attempts a
        WHERE a.job_id = jobs.id AND a.attempt = jobs.attempt) WHERE state = 'running'
    """,
    # 8: reclaims and their budget; started jobs lose their ttl (see the SQLite version).
    """
    ALTER TABLE jobs ADD COLUMN reclaims INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE jobs ADD COLUMN max_reclaims INTEGER NOT NULL DEFAULT 3;
    UPDATE jobs SET expires_at = NULL WHERE started_at IS NOT NULL AND expires_at IS NOT NULL
    """,
    # 9: commit tokens. A write that must not be applied twice inserts a random token in the
    # message that carries its COMMIT; if the COMMIT goes unanswered, the token's presence says
    # whether it committed (`PostgresStore._settle_token`). Tokens begin with their time, so
    # the old ones are deleted by a range of the key.
    """
    CREATE TABLE commit_tokens (token uuid PRIMARY KEY)
    """,
    # 10: the index of ttls leaves blocked jobs out (see the SQLite version).
    """
    DROP INDEX jobs_expiry;
    CREATE INDEX jobs_expiry ON jobs (expires_at)
        WHERE expires_at IS NOT NULL AND state IN ('pending', 'scheduled')
    """,
    # 11: aging's own clock, `aged_at` (see the SQLite version).
    """
    ALTER TABLE jobs ADD COLUMN aged_at DOUBLE PRECISION;
    UPDATE jobs SET aged_at = ready_at WHERE state = 'pending' AND priority > base_priority
    """,
    # 12: a schedule's overlap policy and its skipped firings (see the SQLite version).
    """
    ALTER TABLE schedules ADD COLUMN overlap TEXT NOT NULL DEFAULT 'skip';
    ALTER TABLE schedules ADD COLUMN skipped INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE schedules ADD COLUMN last_skipped_at DOUBLE PRECISION
    """,
    # 13: the workers (see the SQLite version).
    """
    CREATE TABLE workers (
        worker_id TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        domains TEXT NOT NULL,
        tags TEXT NOT NULL,
        resources TEXT NOT NULL,
        held INTEGER NOT NULL,
        ttl DOUBLE PRECISION NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        heartbeat_at DOUBLE PRECISION NOT NULL
    )
    """,
    # 14: the job types workers record (see the SQLite version).
    """
    CREATE TABLE job_types (
        type TEXT PRIMARY KEY,
        domain TEXT NOT NULL,
        name TEXT NOT NULL,
        payload TEXT NOT NULL,
        settings TEXT NOT NULL,
        recorded_by TEXT NOT NULL,
        recorded_at DOUBLE PRECISION NOT NULL
    )
    """,
    # 15: rate limits (see the SQLite version).
    """
    ALTER TABLE jobs ADD COLUMN rate_key TEXT;
    ALTER TABLE jobs ADD COLUMN cost INTEGER NOT NULL DEFAULT 1;
    CREATE TABLE rate_limits (
        name TEXT PRIMARY KEY,
        count INTEGER NOT NULL,
        per DOUBLE PRECISION NOT NULL,
        burst INTEGER NOT NULL,
        keyed INTEGER NOT NULL
    );
    CREATE TABLE rate_buckets (
        name TEXT NOT NULL,
        key TEXT NOT NULL,
        tat DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (name, key)
    )
    """,
    # 16: a job's metadata (see the SQLite version).
    "ALTER TABLE jobs ADD COLUMN meta TEXT",
    # 17: debounce, throttle and flow pauses (see the SQLite version).
    f"""
    DROP INDEX jobs_active_key;
    CREATE INDEX jobs_active_key ON jobs (type, key)
        WHERE key IS NOT NULL AND state NOT IN {TERMINAL_SQL};
    CREATE UNIQUE INDEX jobs_waiting_key ON jobs (type, key)
        WHERE key IS NOT NULL AND state NOT IN {TERMINAL_SQL} AND started_at IS NULL;
    CREATE TABLE paused_flows (
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        paused_at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (kind, name)
    );
    CREATE TABLE job_throttles (
        type TEXT NOT NULL,
        key TEXT NOT NULL,
        until DOUBLE PRECISION NOT NULL,
        job_id BIGINT NOT NULL,
        PRIMARY KEY (type, key)
    );
    CREATE INDEX job_throttles_until ON job_throttles (until)
    """,
    # 18: concurrency keys and fair share (see the SQLite version).
    """
    ALTER TABLE jobs ADD COLUMN flow_key TEXT;
    ALTER TABLE jobs ADD COLUMN key_cap INTEGER;
    ALTER TABLE jobs ADD COLUMN fair_seq BIGINT NOT NULL DEFAULT 0;
    DROP INDEX jobs_pending;
    CREATE INDEX jobs_pending ON jobs (priority DESC, fair_seq, id) WHERE state = 'pending';
    CREATE INDEX jobs_key_running ON jobs (flow_key)
        WHERE state = 'running' AND flow_key IS NOT NULL;
    CREATE INDEX jobs_key_pending ON jobs (flow_key, fair_seq)
        WHERE state = 'pending' AND flow_key IS NOT NULL
    """,
)

SCHEMA_VERSION = len(MIGRATIONS)

BROWSE_INDEXES: tuple[str, ...] = (
    "CREATE INDEX IF NOT EXISTS jobs_browse_state ON jobs (state, id) WHERE created_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS jobs_browse_domain ON jobs (domain, id) "
    "WHERE created_at IS NOT NULL",
)
"""Indexes for browsing jobs (`find_jobs`, the dashboard's jobs list), by state and by domain
(a type filter reads its domain's), each with the id, so a filtered page is an index range
read by keyset, newest first, however many jobs there are. Not a migration: the state index
costs every state change (about a tenth of the store's end-to-end rate), so only a store that
is browsed gets them (`Store.prepare_browsing`, called by the dashboard). Each is partial on
`created_at IS NOT NULL` (every row: the column is NOT NULL), a condition no hot path states or
implies: only a query that says so too may use them, so the claim, wake-ups, expiry, leases,
aging and finishes keep their own indexes. Left free to choose, SQLite took these for the claim
(seven times slower), and PostgreSQL with stale statistics for finishes."""


def migrate(tx: Tx, where: str, migrations: tuple[str, ...] = MIGRATIONS) -> int:
    """Bring the schema up to date inside the caller's write transaction; return the version.

    `migrations` is the dialect's list (SQLite's `MIGRATIONS` or PostgreSQL's); both have the
    same length and the same `schema_version` semantics.
    """
    tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = tx.execute("SELECT max(version) FROM schema_version").fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    latest = len(migrations)
    if current > latest:
        raise SchemaVersionError(
            f"{where}: schema version {current} was written by a newer wireframe; "
            f"this one understands up to version {latest}. Upgrade wireframe."
        )
    for version in range(current + 1, latest + 1):
        for statement in migrations[version - 1].split(";"):
            if statement.strip():
                tx.execute(statement)
        tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return latest


if len(PG_MIGRATIONS) != len(MIGRATIONS):  # pragma: no cover - a development-time guard
    raise AssertionError("every migration needs its SQLite and its PostgreSQL version")
