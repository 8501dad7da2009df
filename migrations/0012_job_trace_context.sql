-- The W3C traceparent of the request (or job) that enqueued a job, so the job's log lines and
-- its outbound calls (a bank, a webhook receiver) carry the same trace id. Null for work nobody
-- traced (scheduled refreshes); such a run starts a trace of its own. Generic: the queue does
-- not know what a trace is for.
alter table job add column traceparent text;
