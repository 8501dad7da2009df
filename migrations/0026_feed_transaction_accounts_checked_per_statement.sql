-- Issue #17: a stored transaction's account is checked once per statement, not once per row.
-- PostgreSQL checks a foreign key row by row (a query and a row lock for each row), and a first
-- refresh or a statement import writes hundreds of rows for a handful of accounts: the check
-- was a quarter of the cost of inserting a first refresh's 232 rows. The triggers below keep
-- everything the foreign key of migration 0021 guaranteed:
-- - a transaction names an account that exists, and its connection is that account's
--   connection (checked after each insert, for all its rows at once);
-- - the account cannot be deleted until the inserting transaction ends (its row is locked
--   `for key share`, the lock the foreign key took);
-- - deleting an account (only ever through deleting its connection) deletes its transactions;
-- - neither side's keys change under the other (an update of them is refused).

alter table feed_transaction drop constraint feed_transaction_account_connection_fkey;
-- Only the composite foreign key needed it; `account`'s primary key finds the row.
alter table account drop constraint account_id_connection_id_key;

create function feed_transaction_accounts_exist() returns trigger
language plpgsql as $$
declare
    missing record;
begin
    perform from account a where a.id in (select account_id from inserted) for key share;
    -- A new statement, so in READ COMMITTED a new snapshot: an account deleted by a transaction
    -- the lock above waited for is gone here.
    select i.account_id, i.connection_id into missing
    from (select distinct account_id, connection_id from inserted) i
    where not exists (select from account a where a.id = i.account_id and a.connection_id = i.connection_id)
    limit 1;
    if found then
        raise foreign_key_violation using
            message = format('account %s of connection %s does not exist', missing.account_id, missing.connection_id),
            table = 'feed_transaction';
    end if;
    return null;
end $$;

create trigger feed_transaction_accounts_exist after insert on feed_transaction
    referencing new table as inserted for each statement
    execute function feed_transaction_accounts_exist();

create function feed_transaction_delete_with_account() returns trigger
language plpgsql as $$
begin
    delete from feed_transaction where account_id = old.id;
    return null;
end $$;

create trigger feed_transaction_delete_with_account after delete on account
    for each row execute function feed_transaction_delete_with_account();

create function refuse_key_change() returns trigger
language plpgsql as $$
begin
    raise foreign_key_violation using
        message = format('%s: the columns that tie a transaction to its account do not change', tg_table_name),
        table = tg_table_name;
end $$;

create trigger feed_transaction_account_fixed before update of account_id, connection_id on feed_transaction
    for each row when (old.account_id is distinct from new.account_id or old.connection_id is distinct from new.connection_id)
    execute function refuse_key_change();

create trigger account_key_fixed before update of id, connection_id on account
    for each row when (old.id is distinct from new.id or old.connection_id is distinct from new.connection_id)
    execute function refuse_key_change();
