-- Workflow sessions: one row per started run of a workflow (the daily sync, the employee sync),
-- with who started it and how. `run` counts fresh starts of the same session (clear_session);
-- the status rows of earlier runs stay as history.
create table sessions (
    id           uuid primary key not null,
    workflow     text not null,
    state        text not null check (state in ('running', 'waiting', 'completed', 'completed_with_warnings', 'failed', 'cancelled')),
    source       text not null check (source in ('manual', 'scheduler', 'api', 'webhook', 'smart')),
    triggered_by text,
    run          bigint not null default 1,
    warnings     text not null default '[]',        -- JSON array of strings
    started_at   timestamptz not null,
    finished_at  timestamptz
);
create index sessions_recent on sessions (started_at);

-- The status table (seed 000): steps append what they are doing as it happens; the UI only reads.
create table step_status (
    id         bigserial primary key,
    session_id uuid not null references sessions (id) on delete cascade,
    run        bigint not null,
    step       bigint not null check (step >= 1),
    name       text not null,
    status     text not null check (status in ('waiting', 'processing', 'completed', 'failed')),
    message    text,
    details    text not null default '{}',         -- JSON
    at         timestamptz not null
);
create index step_status_by_session on step_status (session_id, id);

-- Where each step of each run of a session is, for the workflow engine: one row per step it
-- entered. A step moves on only by a compare-and-set on `state`, so two jobs ending together
-- cannot advance it twice.
create table session_steps (
    session_id uuid not null references sessions (id) on delete cascade,
    run        bigint not null,
    step       bigint not null,
    state      text not null check (state in ('waiting', 'processing', 'completed', 'failed')),
    action     text,                                -- the gate's button label while it waits
    acted_by   text,                                -- who pressed it
    acted_at   timestamptz,
    started_at timestamptz,                                 -- when it last began processing: its jobs are the ones queued since
    primary key (session_id, run, step)
);

-- The jobs a step started (a retried step adds more).
create table session_jobs (
    session_id uuid not null references sessions (id) on delete cascade,
    run        bigint not null,
    step       bigint not null,
    job_id     uuid not null,
    primary key (session_id, run, step, job_id)
);
