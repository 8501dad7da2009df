-- Refresh outcomes per institution (success rates, incident detection) and bank incidents.

-- Append-only: one row per stored refresh outcome. Nothing updates these rows, so refreshes of
-- one big institution never wait on each other here; the cleaner drops rows older than a week.
create table refresh_outcome (
    institution_id uuid        not null references institution (id) on delete cascade,
    connection_id  uuid        not null,
    occurred_at    timestamptz not null default now(),
    succeeded      boolean     not null,
    -- The bank (not the user, us or the provider) must act: what incident detection counts.
    bank_side      boolean     not null default false,
    error_code     integer,
    constraint success_has_no_error check (not (succeeded and (bank_side or error_code is not null)))
);

create index refresh_outcome_window_idx on refresh_outcome (institution_id, occurred_at);
create index refresh_outcome_age_idx on refresh_outcome (occurred_at);

create table incident (
    id               uuid        primary key,
    institution_id   uuid        not null references institution (id) on delete cascade,
    state            text        not null default 'open' check (state in ('open', 'resolved')),
    -- `detected` by the refresh path, or `declared` by a helpdesk agent.
    source           text        not null check (source in ('detected', 'declared')),
    title            text        not null check (length(title) between 1 and 200),
    message          text        not null default '' check (length(message) <= 2000),
    -- The bank-side code most of the failures had, when detected.
    error_code       integer,
    -- Evidence at detection: distinct connections that failed bank-side / were attempted.
    failed_connections    integer not null default 0,
    attempted_connections integer not null default 0,
    -- Affected connections are retried no earlier than this; what `wait_until` shows.
    wait_until       timestamptz not null,
    opened_at        timestamptz not null default now(),
    opened_by        uuid,
    resolved_at      timestamptz,
    resolved_by      uuid,
    resolution       text        not null default '' check (length(resolution) <= 2000),
    updated_at       timestamptz not null default now(),
    constraint resolved_iff_state check ((state = 'resolved') = (resolved_at is not null))
);

-- Never two open incidents for one institution, however many replicas detect at once: a second
-- insert conflicts and does nothing.
create unique index incident_one_open_per_institution on incident (institution_id) where state = 'open';
create index incident_listing_idx on incident (opened_at desc, id desc);
create index incident_institution_idx on incident (institution_id, opened_at desc);
