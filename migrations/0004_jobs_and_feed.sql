-- The job queue (refreshes and, later, webhook deliveries) and the transaction feed.
--
-- States are explicit and checked: running iff leased, finished iff terminal. There is no
-- separate `scheduled` or `retryable` state: delayed and retrying jobs are `available` with a
-- future run_at, and the claim index orders by run_at, so no scheduler loop has to move rows.
create table job (
    job_id           bigint      generated always as identity primary key,
    state            text        not null default 'available'
                                 check (state in ('available', 'running', 'succeeded', 'failed', 'cancelled')),
    kind             text        not null check (length(kind) between 1 and 64),
    args             jsonb       not null,
    -- Serialises and de-duplicates: refresh:<connection id>.
    unique_key       text,
    priority         smallint    not null default 0,
    run_at           timestamptz not null default now(),
    -- Incremented on claim; every later state change is fenced by it.
    attempt          integer     not null default 0,
    max_attempts     integer     not null default 8 check (max_attempts > 0),
    lease_expires_at timestamptz,
    locked_by        text,
    errors           jsonb       not null default '[]',
    result           jsonb,
    -- Refresh jobs point at their connection, for its history; set null when it is purged.
    connection_id    uuid        references connection (id) on delete set null,
    trigger          text        not null default 'manual',
    created_at       timestamptz not null default now(),
    updated_at       timestamptz not null default now(),
    started_at       timestamptz,
    finished_at      timestamptz,
    constraint running_iff_leased check ((state = 'running') = (lease_expires_at is not null)),
    constraint finished_iff_final check ((finished_at is not null) = (state in ('succeeded', 'failed', 'cancelled')))
);

-- Claim path: only available rows, in claim order; small and hot.
create index job_claimable_idx on job (priority desc, run_at, job_id) where state = 'available';
-- Rescue path: running rows by lease expiry.
create index job_lease_idx on job (lease_expires_at) where state = 'running';
-- At most one pending and one running job per key (a running refresh does not block a new one).
create unique index job_one_available_per_key on job (unique_key) where unique_key is not null and state = 'available';
create unique index job_one_running_per_key on job (unique_key) where unique_key is not null and state = 'running';
-- Retention sweep and per-connection history.
create index job_finished_idx on job (finished_at) where finished_at is not null;
create index job_connection_idx on job (connection_id, created_at desc) where connection_id is not null;

-- Every change to a transaction takes the next value; the sync cursor is "changes after N".
-- Refreshes of one connection are serialised (queue + an advisory lock in the writing
-- transaction), so a connection's changes commit in sequence order.
create sequence feed_change_seq;

create table feed_transaction (
    id             uuid          primary key,
    account_id     uuid          not null references account (id) on delete cascade,
    connection_id  uuid          not null references connection (id) on delete cascade,
    fitid          text          not null check (length(fitid) between 1 and 255),
    posted_at      timestamptz   not null,
    amount         numeric(20, 4) not null,
    currency       text          not null default 'USD',
    name           text          not null default '',
    payee          text          not null default '',
    memo           text          not null default '',
    check_number   text          not null default '',
    kind           text          not null default '',
    pending        boolean       not null default false,
    -- A posted transaction names the pending one it replaces (by the bank's id).
    replaces_fitid text,
    removed        boolean       not null default false,
    created_seq    bigint        not null,
    change_seq     bigint        not null,
    created_at     timestamptz   not null default now(),
    updated_at     timestamptz   not null default now(),
    unique (account_id, fitid)
);

create index feed_transaction_sync_idx on feed_transaction (connection_id, change_seq);
create index feed_transaction_account_idx on feed_transaction (account_id, posted_at, id);
