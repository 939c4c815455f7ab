-- One row per server process that started against this database.
create table instances (
    id           uuid primary key,
    version      text not null,
    hostname     text not null,
    pid          bigint not null,
    started_at   timestamptz not null,
    heartbeat_at timestamptz not null,
    stopped_at   timestamptz
);

create index instances_running on instances (started_at) where stopped_at is null;
