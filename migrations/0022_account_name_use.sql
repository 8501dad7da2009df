-- Shared account names, kept on write (issue #17, the read path). A connection's page shows the
-- display names its accounts share (case-insensitively) with another visible account of the
-- tenant, a known cause of QuickBooks 324. Read-time grouping walked every connection of the
-- tenant and its accounts on every page view; this table holds, per tenant and lower-cased
-- name, how many visible accounts (state <> 'hidden') of its not-disconnected connections use
-- it, so a page probes it once per account of its own. Exact, not a cache: the triggers below
-- change it in the transaction that changes an account or a connection, whatever statement
-- does it (the refresh writer's upsert, a rename or hide, a disconnect, a purge).
--
-- Rows that reach zero are deleted, so the table is always the group-by it replaces
-- (`tests/api/account_names.rs` compares the two after random sequences of changes).
-- No check on `accounts`: an upsert evaluates checks on the row it proposes (the delta) before
-- it meets the existing row, and a delta can be negative.
create table account_name_use (
    tenant_id uuid    not null,
    name_key  text    not null,
    accounts  integer not null,
    primary key (tenant_id, name_key)
);

-- Applies count changes (summed per key) in key order: two statements that each take these
-- rows in one order cannot deadlock on them. PL/pgSQL, not SQL, so its two statements keep their
-- plans across calls (a SQL function plans them again at every call).
create function account_name_use_apply(tenants uuid[], keys text[], deltas integer[]) returns void
language plpgsql as $$
begin
    if tenants is null then
        return;
    end if;
    insert into account_name_use as u (tenant_id, name_key, accounts)
    select c.tenant_id, c.name_key, sum(c.delta)
    from unnest(tenants, keys, deltas) as c (tenant_id, name_key, delta)
    group by c.tenant_id, c.name_key
    having sum(c.delta) <> 0
    order by c.tenant_id, c.name_key
    on conflict (tenant_id, name_key) do update set accounts = u.accounts + excluded.accounts;
    delete from account_name_use u
    using unnest(tenants, keys) as c (tenant_id, name_key)
    where u.tenant_id = c.tenant_id and u.name_key = c.name_key and u.accounts = 0;
end $$;

-- Every trigger that reads an account's connection locks the connection row `for share` (in id
-- order) before it counts: a disconnect (which updates the row) and an account change of the
-- same connection then run one after the other, and the second sees the first's result. Without
-- it, an account inserted while its connection is being disconnected would be counted by the
-- insert (the connection looked connected) and missed by the disconnect (the account was not
-- committed yet). A purge deletes the row (a stronger lock) and so waits the same way.

-- Accounts inserted or deleted by one statement: statement-level, so a batch of a writer's
-- refreshes locks its connections and then its names in order, once. Both triggers name their
-- transition table `changed_rows`, so one function counts them in (+1) or out (-1). A refresh's
-- upsert that inserts nothing (every repeat refresh) still calls it and leaves at the first
-- test: `pgbench` of the writer's account statement could not tell it from no trigger
-- (bench/README.md, session 12). A purge's cascade finds no connection (the purge deleted it
-- first, and `account_name_use_on_connection_delete` counted its accounts out).
create function account_name_use_on_insert_or_delete() returns trigger language plpgsql as $$
begin
    perform from changed_rows limit 1;
    if not found then
        return null;
    end if;
    perform account_name_use_apply(array_agg(o.tenant_id), array_agg(lower(r.display_name)),
                                   array_agg(case tg_op when 'INSERT' then 1 else -1 end))
    from changed_rows r
    join (select c.id, c.tenant_id from connection c
          where c.id in (select connection_id from changed_rows) and c.state <> 'disconnected'
          order by c.id for share) o on o.id = r.connection_id
    where r.state <> 'hidden';
    return null;
end $$;

-- An account renamed, hidden or shown (one row; the trigger's `when` leaves every other update,
-- such as a refresh's balances, untouched).
create function account_name_use_on_update() returns trigger language plpgsql as $$
begin
    perform account_name_use_apply(array_agg(o.tenant_id), array_agg(o.name_key), array_agg(o.delta))
    from (select c.tenant_id, change.name_key, change.delta
          from (values (old.connection_id, lower(old.display_name), -1, old.state <> 'hidden'),
                       (new.connection_id, lower(new.display_name), 1, new.state <> 'hidden'))
               as change (connection_id, name_key, delta, visible)
          join (select c.id, c.tenant_id from connection c
                where c.id in (old.connection_id, new.connection_id) and c.state <> 'disconnected'
                order by c.id for share) c on c.id = change.connection_id
          where change.visible) o;
    return null;
end $$;

-- A connection disconnected (or, should it ever happen, reconnected): its visible accounts leave
-- (or join) its tenant's counts. It holds its row's lock, so no account of it changes meanwhile.
create function account_name_use_on_connection_update() returns trigger language plpgsql as $$
begin
    perform account_name_use_apply(array_agg(change.tenant_id), array_agg(lower(a.display_name)), array_agg(change.delta))
    from (values (old.tenant_id, -1, old.state <> 'disconnected'),
                 (new.tenant_id, 1, new.state <> 'disconnected')) as change (tenant_id, delta, counted)
    cross join account a
    where change.counted and a.connection_id = new.id and a.state <> 'hidden';
    return null;
end $$;

-- A connection deleted: counted out before the row goes, while its accounts are still there.
create function account_name_use_on_connection_delete() returns trigger language plpgsql as $$
begin
    if old.state <> 'disconnected' then
        perform account_name_use_apply(array_agg(old.tenant_id), array_agg(lower(a.display_name)), array_agg(-1))
        from account a
        where a.connection_id = old.id and a.state <> 'hidden';
    end if;
    return old;
end $$;

-- Creating the triggers locks both tables against writers until this migration commits, so the
-- backfill below misses no change.
create trigger account_name_use_insert after insert on account
    referencing new table as changed_rows for each statement execute function account_name_use_on_insert_or_delete();
create trigger account_name_use_delete after delete on account
    referencing old table as changed_rows for each statement execute function account_name_use_on_insert_or_delete();
create trigger account_name_use_update after update on account for each row
    when (old.display_name is distinct from new.display_name
          or (old.state = 'hidden') is distinct from (new.state = 'hidden')
          or old.connection_id is distinct from new.connection_id)
    execute function account_name_use_on_update();
create trigger account_name_use_connection_update after update on connection for each row
    when ((old.state = 'disconnected') is distinct from (new.state = 'disconnected')
          or old.tenant_id is distinct from new.tenant_id)
    execute function account_name_use_on_connection_update();
create trigger account_name_use_connection_delete before delete on connection for each row
    execute function account_name_use_on_connection_delete();

insert into account_name_use (tenant_id, name_key, accounts)
select c.tenant_id, lower(a.display_name), count(*)
from account a join connection c on c.id = a.connection_id
where a.state <> 'hidden' and c.state <> 'disconnected'
group by 1, 2;

-- The read-time grouping probed this index; nothing reads account by its name any more.
drop index account_display_name_idx;
