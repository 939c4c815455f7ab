-- Schedules (issue 14): when a sync type, a workflow or the full sync runs by itself, and every
-- fire time it passed: fired (with its jobs or session), skipped (why), missed (nobody was up).
-- A fire claims its time with a compare-and-set on `next_fire_at` in the same transaction that
-- queues its job and writes its row, and (schedule_id, fire_time) is the primary key: with any
-- number of processes on one database, a fire time fires once.
create table schedules (
    id           text primary key,
    target       text not null,
    spec         text not null,
    file_spec    text,
    edited_by    text,
    edited_at    timestamptz,
    anchor       timestamptz not null,
    next_fire_at timestamptz,
    revision     bigint not null default 1,
    updated_at   timestamptz not null
);
create index schedules_due on schedules (next_fire_at) where next_fire_at is not null;

create table schedule_fires (
    schedule_id text not null references schedules (id) on delete cascade,
    fire_time   timestamptz not null,
    outcome     text not null check (outcome in ('fired', 'skipped', 'missed')),
    reason      text,
    job_ids     text not null default '[]',
    session_id  uuid,
    recorded_at timestamptz not null,
    primary key (schedule_id, fire_time)
);
