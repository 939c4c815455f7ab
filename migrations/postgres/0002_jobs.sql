-- Jobs: one row per requested run of a sync type. The lifecycle rules live in
-- src/server/engine/lifecycle.rs; the store writes a new state only if the row is still in the
-- state (and attempt, and lease owner) the engine read.
create table jobs (
    id                  uuid primary key,           -- UUID v7: ordering by id is ordering by creation
    sync_type           text not null,
    priority            bigint not null,
    exclusive           boolean not null,           -- true: takes the one global mutex
    state               text not null check (state in ('pending', 'running', 'completed', 'failed', 'cancelled')),
    progress            bigint not null default 0 check (progress between 0 and 100),
    processed           bigint not null default 0,
    total               bigint,
    message             text,
    error               text,
    result              text,                       -- JSON
    warnings            text not null default '[]', -- JSON array of strings
    attempt             bigint not null default 0,
    max_attempts        bigint not null,
    run_at              timestamptz not null,
    source              text not null,
    triggered_by        text,
    session_id          uuid,
    retry_of            uuid,                       -- the failed or cancelled job this one retries
    checkpoint          text,                       -- JSON the task saved, to resume from
    dedupe_key          text,                       -- set while a requested job waits unclaimed
    created_at          timestamptz not null,
    started_at          timestamptz,
    finished_at         timestamptz,
    heartbeat_at        timestamptz,
    lease_owner         uuid,
    lease_expires_at    timestamptz,
    cancel_requested_at timestamptz,
    yield_requested_at  timestamptz
);

-- The global mutex, enforced by the database: at most one running exclusive job, whichever
-- process claims it.
create unique index jobs_one_exclusive_running on jobs (exclusive) where state = 'running' and exclusive;
-- Requesting a sync of a type that already waits returns the waiting job.
create unique index jobs_dedupe on jobs (dedupe_key) where dedupe_key is not null;
-- The claim order: highest priority, then oldest.
create index jobs_claim on jobs (priority desc, id) where state = 'pending';
create index jobs_running on jobs (lease_expires_at) where state = 'running';
create index jobs_by_type on jobs (sync_type, finished_at);

-- What a job's task reads (pushed records), apart from `jobs` so that the frequent small updates
-- of a job row (progress, checkpoint, state) never rewrite a large payload.
create table job_inputs (
    job_id uuid primary key references jobs (id) on delete cascade,
    input  text not null
);

-- Where the built-in `records` task upserts pushed records, by their `id`.
create table records (
    id         text primary key,
    data       text not null,                       -- JSON, the record as pushed
    job_id     uuid not null,                       -- the job that wrote it last
    updated_at timestamptz not null
);
