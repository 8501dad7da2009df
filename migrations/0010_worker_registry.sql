-- Worker pools announce themselves, so `/v1/queue` lists the live workers even while they are
-- idle, and an operator can tell a replica that stopped from one that has nothing to do.
create table worker (
    -- host/pid, as in job.locked_by.
    id           text        primary key check (length(id) between 1 and 300),
    kinds        text[]      not null,
    concurrency  integer     not null check (concurrency > 0),
    -- Jobs running when it last reported.
    running      integer     not null check (running >= 0),
    started_at   timestamptz not null,
    last_seen_at timestamptz not null,
    -- Presumed gone unless seen again by then: one lease on from its last report (a pool
    -- reports every third of its lease, and removes its row when it stops cleanly).
    expires_at   timestamptz not null
);

create index worker_expires_idx on worker (expires_at);
