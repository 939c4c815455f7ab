-- A sync type turned on or off from the Syncs page or the API (issue 14): it outlives restarts
-- and every process on the database follows it; the file's `enabled` is the value until then.
create table sync_type_settings (
    name       text primary key,
    enabled    boolean not null,
    changed_by text not null,
    changed_at timestamptz not null
);
