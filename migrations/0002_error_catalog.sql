-- The error-code reference.
--
-- `error_entry` holds each canonical entry's current text as a JSON document (the same shape as
-- the shipped TOML), so adding a field to the catalogue needs no migration. `shipped_hash` is the
-- fingerprint of the shipped text last synced: an admin edit keeps it, so the edit wins until a
-- release changes the shipped text.
create table error_entry (
    code         integer     primary key check (code > 0),
    reason       text        not null unique,
    body         jsonb       not null,
    revision     integer     not null check (revision > 0),
    shipped_hash text        not null,
    updated_at   timestamptz not null default now()
);

-- Every text an entry ever had, shipped or edited. Append-only.
create table error_entry_revision (
    code       integer     not null references error_entry (code) on delete cascade,
    revision   integer     not null check (revision > 0),
    body       jsonb       not null,
    origin     text        not null check (origin in ('shipped', 'admin')),
    edited_by  uuid        references api_key (id) on delete set null,
    created_at timestamptz not null default now(),
    primary key (code, revision)
);

-- Provider codes. Replaced wholesale from the shipped files at start: they are not edited
-- through the API.
create table error_namespace (
    namespace text primary key,
    provider  text not null
);

create table error_alias (
    namespace  text    not null references error_namespace (namespace) on delete cascade,
    code       text    not null,
    canonical  integer not null references error_entry (code),
    match_kind text    not null check (match_kind in ('exact', 'nearest')),
    title      text    not null,
    note       text,
    primary key (namespace, code)
);

-- Lookups are case-insensitive, so two codes differing only in case would be ambiguous.
create unique index error_alias_code_ci on error_alias (namespace, lower(code));
