-- Institutions, connections, accounts, the connection timeline, and idempotency records.

create table institution (
    id              uuid        primary key,
    slug            text        not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    name            text        not null check (length(name) between 1 and 200),
    -- `ofx`: Direct Connect at ofx_url; `sandbox`: the sandbox bank, whose URL is configuration.
    provider        text        not null check (provider in ('ofx', 'sandbox')),
    ofx_url         text        check (ofx_url is null or ofx_url ~ '^https?://'),
    ofx_org         text        not null default '',
    ofx_fid         text        not null default '',
    ofx_app_id      text        not null default 'QWIN',
    ofx_app_version text        not null default '2700',
    ofx_version     integer     not null default 102 check (ofx_version in (102, 103, 220)),
    aliases         text[]      not null default '{}',
    active          boolean     not null default true,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint ofx_needs_url check (provider <> 'ofx' or ofx_url is not null)
);

create index institution_listing_idx on institution (created_at, id);

create table connection (
    id                     uuid        primary key,
    tenant_id              uuid        not null,
    institution_id         uuid        not null references institution (id),
    display_name           text        not null check (length(display_name) between 1 and 200),
    state                  text        not null default 'syncing' check (state in (
                               'healthy', 'syncing', 'degraded', 'needs_user_action',
                               'bank_issue', 'provider_issue', 'disconnected')),
    paused                 boolean     not null default false,
    refresh_every_seconds  integer     not null default 86400 check (refresh_every_seconds between 3600 and 604800),
    -- AES-256-GCM: nonce || ciphertext, sealed under key `credentials_key_id` with the
    -- connection id as associated data, so a sealed blob cannot be moved to another row.
    credentials_sealed     bytea       not null,
    credentials_key_id     text        not null,
    credentials_updated_at timestamptz not null default now(),
    -- Health, kept current by refreshes.
    last_attempt_at        timestamptz,
    last_success_at        timestamptz,
    data_as_of             timestamptz,
    failure_streak         integer     not null default 0 check (failure_streak >= 0),
    error_code             integer,
    error_raw              text,
    error_at               timestamptz,
    next_refresh_at        timestamptz,
    -- Optimistic concurrency: the ETag; every write bumps it.
    version                integer     not null default 1,
    created_at             timestamptz not null default now(),
    updated_at             timestamptz not null default now(),
    disconnected_at        timestamptz,
    constraint disconnected_iff_state check ((state = 'disconnected') = (disconnected_at is not null))
);

-- Lists are walked per tenant in creation order; fleet filters use the others.
create index connection_tenant_idx on connection (tenant_id, created_at, id);
create index connection_listing_idx on connection (created_at, id);
create index connection_institution_idx on connection (institution_id, state);
create index connection_state_idx on connection (state, tenant_id);
create index connection_error_idx on connection (error_code) where error_code is not null;
create index connection_last_success_idx on connection (last_success_at);

create table account (
    id              uuid          primary key,
    connection_id   uuid          not null references connection (id) on delete cascade,
    -- The bank's id for the account; a remap changes it and keeps our id and history.
    bank_account_id text          not null check (length(bank_account_id) between 1 and 64),
    kind            text          not null check (kind in ('checking', 'savings', 'credit_card', 'money_market', 'line_of_credit', 'other')),
    masked_number   text          not null default '',
    bank_name       text          not null default '',
    display_name    text          not null check (length(display_name) between 1 and 200),
    state           text          not null default 'active' check (state in ('active', 'closed', 'not_found', 'hidden')),
    currency        text          not null default 'USD' check (currency ~ '^[A-Z]{3}$'),
    balance         numeric(20, 4),
    available       numeric(20, 4),
    balance_as_of   timestamptz,
    error_code      integer,
    created_at      timestamptz   not null default now(),
    updated_at      timestamptz   not null default now(),
    unique (connection_id, bank_account_id)
);

create index account_display_name_idx on account (lower(display_name));

-- The timeline: append-only, one row per change or refresh outcome.
create table connection_event (
    id            uuid        primary key,
    connection_id uuid        not null references connection (id) on delete cascade,
    kind          text        not null check (length(kind) between 1 and 64),
    detail        jsonb       not null default '{}',
    actor_key_id  uuid,
    actor_role    text,
    -- clock_timestamp, not now(): several events of one transaction keep their order.
    occurred_at   timestamptz not null default clock_timestamp()
);

create index connection_event_timeline_idx on connection_event (connection_id, occurred_at, id);

-- A POST repeated with the same Idempotency-Key by the same key gets the first response.
create table idempotency_record (
    api_key_id   uuid        not null,
    key          text        not null check (length(key) between 1 and 200),
    request_hash bytea       not null,
    status       smallint    not null,
    body         bytea       not null,
    location     text,
    created_at   timestamptz not null default now(),
    expires_at   timestamptz not null,
    primary key (api_key_id, key)
);

create index idempotency_record_expiry_idx on idempotency_record (expires_at);
