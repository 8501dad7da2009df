-- The queue's backlog, defined once by the queue: jobs waiting, jobs due, jobs running, and the
-- age of the oldest due job. `jobs::store::reads` reads it for /v1/queue and the metrics, and
-- the health summary reads it inside its own statement (one statement is one snapshot), so
-- "due" means the same thing on every page. Each count is read from the claim and lease indexes
-- only, so its cost follows the backlog, not the retained history. Selecting some columns runs
-- only their sub-selects: PostgreSQL flattens the view and drops the columns nobody reads.
create view job_backlog as
select (select count(*) from job where state = 'available') as available,
       (select count(*) from job where state = 'available' and run_at <= now()) as due,
       (select count(*) from job where state = 'running') as running,
       (select extract(epoch from now() - min(run_at))::float8
        from job where state = 'available' and run_at <= now()) as oldest_due_seconds;
