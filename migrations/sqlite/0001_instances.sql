-- One row per server process that started against this database.
create table instances (
    id           blob primary key not null, -- UUID v7, 16 bytes
    version      text not null,
    hostname     text not null,
    pid          integer not null,
    started_at   text not null,             -- RFC 3339, UTC
    heartbeat_at text not null,
    stopped_at   text
) strict;

create index instances_running on instances (started_at) where stopped_at is null;
