-- Schedules (issue 14): when a sync type, a workflow or the full sync runs by itself, and every
-- fire time it passed: fired (with its jobs or session), skipped (why), missed (nobody was up).
-- A fire claims its time with a compare-and-set on `next_fire_at` in the same transaction that
-- queues its job and writes its row, and (schedule_id, fire_time) is the primary key: with any
-- number of processes on one database, a fire time fires once.
create table schedules (
    id           text primary key not null,
    target       text not null,                 -- JSON: {"kind":"sync","name":"customers"}
    spec         text not null,                 -- JSON: the timing in effect (ScheduleSpec)
    file_spec    text,                          -- JSON: what baton.toml or the default says
    edited_by    text,                          -- who changed it from the UI or API
    edited_at    text,
    anchor       text not null,                 -- where an interval's grid starts
    next_fire_at text,                          -- null while disabled
    revision     integer not null default 1,
    updated_at   text not null
) strict;
create index schedules_due on schedules (next_fire_at) where next_fire_at is not null;

create table schedule_fires (
    schedule_id text not null references schedules (id) on delete cascade,
    fire_time   text not null,
    outcome     text not null check (outcome in ('fired', 'skipped', 'missed')),
    reason      text,
    job_ids     text not null default '[]',     -- JSON array of job ids
    session_id  blob,
    recorded_at text not null,
    primary key (schedule_id, fire_time)
) strict;
