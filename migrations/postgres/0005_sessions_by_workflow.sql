-- The newest session of a workflow (the Daily sync page shows it): ids are UUIDv7, so the
-- greatest id of a workflow is its newest session.
create index sessions_by_workflow on sessions (workflow, id);
