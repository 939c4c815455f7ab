-- What connectors pull: one row per record of an entity (customers, products, … or a name the
-- configuration gives), keyed by the record's key field. `hash` is xxh3 of the record's canonical
-- JSON, so a change is found without comparing whole documents. `seen_by` is the last job that
-- saw the record; a full pull marks the rows it did not see as removed.
create table entity_records (
    entity     text not null,
    key        text not null,
    data       text not null,                       -- JSON, keys sorted
    hash       bigint not null,
    created_at timestamptz not null,
    updated_at timestamptz not null,                -- when the data last changed here
    removed_at timestamptz,                         -- set when a full pull no longer saw it
    seen_by    uuid not null,                       -- the job that saw it last
    primary key (entity, key)
);

-- The change set of every run: which keys were created, updated (and which top-level fields) or
-- removed. Goes with its job when the job is pruned.
create table entity_changes (
    id      bigserial primary key,
    job_id  uuid not null references jobs (id) on delete cascade,
    entity  text not null,
    key     text not null,
    change  text not null check (change in ('created', 'updated', 'removed')),
    fields  text,                                   -- JSON array of changed fields, for updates
    at      timestamptz not null
);
create index entity_changes_recent on entity_changes (entity, id);
create index entity_changes_by_job on entity_changes (job_id);

-- What the export task sent, per target: a record is ready again when its hash differs.
create table entity_exports (
    entity      text not null,
    key         text not null,
    target      text not null,                      -- the sync type that exported it
    hash        bigint not null,
    exported_at timestamptz not null,
    job_id      uuid not null,
    primary key (entity, key, target)
);

-- Each job's log lines (a task's own lines, a command's stdout and stderr). `seq` counts the lines
-- of one run of the task; a run that yielded and resumed keeps its attempt number, so lines are
-- ordered and paged by `id`.
create table job_logs (
    id      bigserial primary key,
    job_id  uuid not null references jobs (id) on delete cascade,
    attempt bigint not null,
    seq     bigint not null,
    at      timestamptz not null,
    level   text not null check (level in ('info', 'warn', 'error')),
    message text not null
);
create index job_logs_by_job on job_logs (job_id, id);
