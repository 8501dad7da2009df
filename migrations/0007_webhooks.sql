-- Webhooks: endpoints that receive events, the messages events produce, and a log of every
-- delivery attempt. Deliveries themselves are jobs (`job.kind = 'webhook.deliver'`).

create table webhook_endpoint (
    id              uuid        primary key,
    -- Null: a fleet-wide endpoint (registered by helpdesk or admin) that receives every
    -- tenant's events and every fleet event.
    tenant_id       uuid,
    url             text        not null check (length(url) between 1 and 2000),
    events          text[]      not null check (cardinality(events) between 1 and 16),
    description     text        not null default '' check (length(description) <= 500),
    enabled         boolean     not null default true,
    -- Why deliveries stopped (the receiver answered 410 Gone); null while enabled.
    disabled_reason text,
    -- The Standard Webhooks signing secret, sealed like bank credentials (AES-256-GCM under
    -- `secret_key_id`, the endpoint id as associated data).
    secret_sealed   bytea       not null,
    secret_key_id   text        not null,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint disabled_has_reason check (enabled = (disabled_reason is null))
);

-- Emission looks up a tenant's enabled endpoints and the fleet-wide ones (tenant_id is null)
-- on every event, so it must stay an index probe; lists walk the same order.
create index webhook_endpoint_tenant_idx on webhook_endpoint (tenant_id, created_at, id);
create index webhook_endpoint_listing_idx on webhook_endpoint (created_at, id);

-- One row per event that had at least one subscriber. The id is the `webhook-id` header
-- (`msg_<id>`), the same on every attempt so receivers can de-duplicate.
create table webhook_message (
    id             uuid        primary key,
    event_type     text        not null check (length(event_type) between 1 and 64),
    tenant_id      uuid,
    institution_id uuid,
    -- The exact bytes sent and signed, `{type, timestamp, data}`: text, not jsonb, because
    -- jsonb would reorder keys and every retry must sign the same body.
    body           text        not null,
    created_at     timestamptz not null default now()
);

create index webhook_message_age_idx on webhook_message (created_at);

-- Append-only: one row per attempt, written after it ended.
create table webhook_delivery (
    id              uuid        primary key,
    endpoint_id     uuid        not null references webhook_endpoint (id) on delete cascade,
    message_id      uuid        not null references webhook_message (id) on delete cascade,
    event_type      text        not null,
    attempt         integer     not null check (attempt > 0),
    -- delivered: 2xx; retrying: failed, another attempt is queued; failed: no more attempts.
    outcome         text        not null check (outcome in ('delivered', 'retrying', 'failed')),
    -- Null when no response came (timeout, refused connection, address not allowed).
    status_code     integer,
    error           text        check (length(error) <= 1000),
    duration_ms     integer     not null check (duration_ms >= 0),
    next_attempt_at timestamptz,
    at              timestamptz not null default now()
);

create index webhook_delivery_endpoint_idx on webhook_delivery (endpoint_id, at desc, id desc);
create index webhook_delivery_message_idx on webhook_delivery (message_id);
