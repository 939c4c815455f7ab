-- The order form (issue 13). A smart-sync lease per open browser tab: while any is live (not
-- ended, heartbeat within the grace, before its hard expiry) no exclusive sync but the customers
-- refresh starts. Drafts of orders that sales staff save from the form; one marked ready is also
-- a record of the entity `drafts`, which the export step sends to the ERP.
create table smart_leases (
    id           bigserial primary key,
    tab_id       text not null,
    who          text not null,
    created_at   timestamptz not null,
    heartbeat_at timestamptz not null,
    expires_at   timestamptz not null,
    ended_at     timestamptz,
    end_reason   text check (end_reason in ('closed', 'vanished', 'timeout'))
);
create unique index smart_leases_live_tab on smart_leases (tab_id) where ended_at is null;
create index smart_leases_open on smart_leases (ended_at) where ended_at is null;

create table drafts (
    id          bigserial primary key,
    customer_id text not null,
    lines       text not null,
    total_cents bigint not null,
    note        text,
    status      text not null check (status in ('draft', 'ready')),
    created_by  text not null,
    created_at  timestamptz not null,
    updated_by  text not null,
    updated_at  timestamptz not null
);
