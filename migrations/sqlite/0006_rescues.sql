-- How often a job's worker lost its lease (died, hung or lost the database) and the job was
-- rescued. A rescue gives its attempt back (a crash is not the task's failure, and the task ran
-- at least once); this count stops a job whose task keeps killing its workers.
alter table jobs add column rescues integer not null default 0;
