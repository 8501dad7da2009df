-- Statement files imported into a connection's feed (issue #16).

-- Where a transaction came from. An imported one the bank later reports is adopted by the
-- feed (its FITID and source change); a refresh never marks an imported one removed, since the
-- bank's window says nothing about days it was not asked about.
alter table feed_transaction
    add column source text not null default 'feed' check (source in ('feed', 'import')),
    -- Identity for rows without a shared FITID: posting day, amount, normalised payee and the
    -- occurrence among identical rows that day (feed::identity). Set on imported rows.
    add column synthetic_key text check (length(synthetic_key) <= 400),
    add column import_id uuid;

create index feed_transaction_synthetic_idx on feed_transaction (account_id, synthetic_key)
    where synthetic_key is not null;

create table statement_import (
    id             uuid         primary key,
    connection_id  uuid         not null references connection (id) on delete cascade,
    file_sha256    bytea        not null check (length(file_sha256) = 32),
    format         text         not null check (format in ('ofx', 'csv')),
    report         jsonb        not null,
    created_at     timestamptz  not null default now()
);

create index statement_import_connection_idx on statement_import (connection_id, created_at desc);

-- Rows that resemble a stored transaction (same day and amount, different payee or id): held
-- for a person to confirm or reject, never merged silently.
create table import_held_duplicate (
    id            uuid           primary key,
    import_id     uuid           not null references statement_import (id) on delete cascade,
    account_id    uuid           not null references account (id) on delete cascade,
    line          integer        not null check (line >= 1),
    fitid         text           check (length(fitid) between 1 and 255),
    synthetic_key text           not null check (length(synthetic_key) <= 400),
    posted_at     timestamptz    not null,
    amount        numeric(20, 4) not null,
    currency      text           not null check (currency ~ '^[A-Z]{3}$'),
    name          text           not null,
    memo          text           not null,
    check_number  text           not null,
    resembles     uuid           not null references feed_transaction (id) on delete cascade,
    state         text           not null default 'held' check (state in ('held', 'imported', 'discarded')),
    decided_at    timestamptz
);

create index import_held_duplicate_import_idx on import_held_duplicate (import_id);

-- The days each account's transactions are known for, by source: a refresh covers its window
-- (from its start to the day it ran), an import the period of its file. Overlapping and
-- adjacent ranges of one source are merged as they are written, so an account keeps a handful.
create table account_coverage (
    account_id  uuid  not null references account (id) on delete cascade,
    source      text  not null check (source in ('feed', 'import')),
    from_day    date  not null,
    to_day      date  not null check (to_day >= from_day),
    primary key (account_id, source, from_day)
);
