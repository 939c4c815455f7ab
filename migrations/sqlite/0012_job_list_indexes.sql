-- The tasks view's filters stay fast with a million jobs (issue 14): newest first within a
-- state, a type or a source, so a page reads its 50 rows from an index instead of scanning.
create index jobs_by_state_id on jobs (state, id);
create index jobs_by_type_id on jobs (sync_type, id);
create index jobs_by_source_id on jobs (source, id);
