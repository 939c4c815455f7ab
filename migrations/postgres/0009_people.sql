-- People and machines (issue 12): users with a role and an argon2 password hash; their signed-in
-- sessions (the cookie holds a random token, the table its SHA-256); API tokens (stored hashed,
-- revoked in place so the audit log can still name them); webhook deliveries seen (replay
-- protection); the append-only audit log. A job's and a session's `note` keeps the text a client
-- sent as `triggered_by`, which is now always who it is.
create table users (
    id            uuid primary key,
    name          text not null,
    name_key      text not null unique,
    role          text not null check (role in ('viewer', 'staff', 'admin')),
    password_hash text not null,
    created_at    timestamptz not null,
    updated_at    timestamptz not null
);

create table auth_sessions (
    token_hash text primary key,
    user_id    uuid not null references users (id) on delete cascade,
    created_at timestamptz not null,
    seen_at    timestamptz not null,
    expires_at timestamptz not null,
    address    text,
    user_agent text
);
create index auth_sessions_by_user on auth_sessions (user_id);

create table api_tokens (
    name         text primary key,
    role         text not null check (role in ('viewer', 'staff', 'admin')),
    token_hash   text not null unique,
    created_at   timestamptz not null,
    created_by   text not null,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

create table hook_deliveries (
    hook        text not null,
    delivery_id text not null,
    signature   text not null,
    received_at timestamptz not null,
    primary key (hook, delivery_id)
);
create unique index hook_deliveries_signature on hook_deliveries (hook, signature);
create index hook_deliveries_received on hook_deliveries (received_at);

create table audit_log (
    id         bigserial primary key,
    at         timestamptz not null,
    actor      text not null,
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
);
create index audit_log_at on audit_log (at);
create index audit_log_actor on audit_log (actor, id);

alter table jobs add column note text;
alter table sessions add column note text;
