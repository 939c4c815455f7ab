-- A job is retried once: a second retry of the same job returns the first (a retry is
-- deduplicated like a request), so repeating the request cannot fill the queue.
create unique index jobs_one_retry on jobs (retry_of) where retry_of is not null;
