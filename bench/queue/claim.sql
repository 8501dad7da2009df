-- The raw ceiling of the queue (issue #8): one statement claims 50 due jobs with
-- FOR UPDATE SKIP LOCKED, in feedwatch's claim order (the job_claimable_idx index), and marks
-- them succeeded. Each pgbench transaction is this one statement, so jobs/s = tps x 50.
-- Run by bench/queue/run.sh: pgbench -n -c 4 -j 2 -T 10 -f claim.sql against a `job` table
-- pre-filled with enough available rows.
with next as (
    select job_id from job
    where state = 'available' and run_at <= now()
    order by priority desc, run_at, job_id
    limit 50
    for update skip locked
)
update job set state = 'succeeded', attempt = job.attempt + 1, finished_at = now(), updated_at = now()
from next where job.job_id = next.job_id;
