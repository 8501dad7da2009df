-- Foundation: API keys.
--
-- A key is shown once at creation as `fw_<id>_<secret>`. Only SHA-256(secret) is stored: the
-- secret is 32 random bytes, so a fast hash is enough (no dictionary to attack) and verification
-- stays cheap on every request. The id lets us find the row without comparing hashes in SQL.
create table api_key (
    id           uuid        primary key,
    secret_hash  bytea       not null check (length(secret_hash) = 32),
    role         text        not null check (role in ('admin', 'helpdesk', 'tenant')),
    tenant_id    uuid,
    label        text        not null default '' check (length(label) <= 200),
    created_at   timestamptz not null default now(),
    created_by   uuid        references api_key (id) on delete set null,
    revoked_at   timestamptz,
    -- A tenant key is bound to exactly one tenant; the other roles span all tenants.
    constraint tenant_key_has_tenant check ((role = 'tenant') = (tenant_id is not null))
);

create index api_key_listing_idx on api_key (created_at, id);
