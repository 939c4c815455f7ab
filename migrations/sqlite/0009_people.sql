-- People and machines (issue 12): users with a role and an argon2 password hash; their signed-in
-- sessions (the cookie holds a random token, the table its SHA-256); API tokens (stored hashed,
-- revoked in place so the audit log can still name them); webhook deliveries seen (replay
-- protection); the append-only audit log. A job's and a session's `note` keeps the text a client
-- sent as `triggered_by`, which is now always who it is.
create table users (
    id            blob primary key not null,   -- UUID v7
    name          text not null,
    name_key      text not null unique,        -- lower-case name: names are unique ignoring case
    role          text not null check (role in ('viewer', 'staff', 'admin')),
    password_hash text not null,
    created_at    text not null,
    updated_at    text not null
) strict;

create table auth_sessions (
    token_hash text primary key not null,      -- hex SHA-256 of the cookie's token
    user_id    blob not null references users (id) on delete cascade,
    created_at text not null,
    seen_at    text not null,                  -- last request (written at most once a minute)
    expires_at text not null,                  -- absolute end, whatever the activity
    address    text,
    user_agent text
) strict;
create index auth_sessions_by_user on auth_sessions (user_id);

create table api_tokens (
    name         text primary key not null,
    role         text not null check (role in ('viewer', 'staff', 'admin')),
    token_hash   text not null unique,
    created_at   text not null,
    created_by   text not null,
    last_used_at text,
    revoked_at   text
) strict;

create table hook_deliveries (
    hook        text not null,
    delivery_id text not null,
    signature   text not null,
    received_at text not null,
    primary key (hook, delivery_id)
) strict;
create unique index hook_deliveries_signature on hook_deliveries (hook, signature);
create index hook_deliveries_received on hook_deliveries (received_at);

create table audit_log (
    id         integer primary key autoincrement,
    at         text not null,
    actor      text not null,                  -- a user's name, token:<name>, hook:<name>, system, anonymous
    actor_kind text not null check (actor_kind in ('user', 'token', 'hook', 'system', 'anonymous')),
    role       text,
    address    text,
    user_agent text,
    action     text not null,
    target     text,
    outcome    text not null check (outcome in ('done', 'refused', 'failed')),
    status     integer,
    reason     text,
    detail     text
) strict;
create index audit_log_at on audit_log (at);
create index audit_log_actor on audit_log (actor, id);

alter table jobs add column note text;
alter table sessions add column note text;
