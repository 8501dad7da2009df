-- Helpdesk console sessions: an API key is exchanged once for a session, so the key itself
-- never travels in a cookie. Only SHA-256 of the random session id is stored (the id is 32
-- random bytes: no dictionary to attack), so a copy of this table signs nobody in.
create table console_session (
    id_hash      bytea       primary key check (length(id_hash) = 32),
    -- Revoking or deleting the key ends its sessions: the lookup joins an active key.
    key_id       uuid        not null references api_key (id) on delete cascade,
    created_at   timestamptz not null default now(),
    -- The idle timeout counts from here; refreshed at most once a minute per session.
    last_seen_at timestamptz not null default now(),
    -- The absolute end, however busy the session.
    expires_at   timestamptz not null
);

create index console_session_expiry_idx on console_session (expires_at);
