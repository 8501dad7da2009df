-- Other single words that name a provider and nothing else ("nordigen", GoCardless's former name),
-- shipped in its alias file as `called`: search reads a sentence holding one as naming the
-- provider. Replaced wholesale with the namespaces at start, as the rest of the table is.
alter table error_namespace
    add column called jsonb not null default '[]'
        check (jsonb_typeof(called) = 'array');
