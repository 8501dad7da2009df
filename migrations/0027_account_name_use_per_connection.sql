-- Issue #17: a tenant's shared-name counts no longer make its first refreshes wait for each
-- other. Migration 0022 kept one row per tenant and lower-cased name, and every transaction that
-- inserts an account updates its name's row and holds that row's lock until it commits. A
-- tenant whose connections name their accounts alike ("Checking", "Savings": every connection
-- to one bank does) had all its first refreshes queue on a few rows, each for the whole of the
-- other batch's transaction: in the refresh benchmark (one tenant, 256 connections) two thirds
-- of the active backends sampled in the first round were waiting on that lock in the account
-- statement (bench/README.md, session 27).
--
-- Each row now counts one connection's accounts of a name, so no two connections' writes meet on
-- a row (a connection's own writes are serialised by its feed lock already), and the tenant's
-- count of a name is the sum of its rows. A row that reaches zero is deleted, as before. The
-- reader (a connection's page) asks whether the name's rows count more than one: two rows, or
-- one counting two (a row counts one at least), so one index probe reads at most two rows,
-- whatever the size of the tenant. Sixteen shards by the connection id's last byte were tried first: the writer
-- stores a few connections per transaction, so two transactions still shared a row three times
-- in four, and the first refreshes still waited.

-- Writers wait until this migration commits: a trigger that ran with the old functions into the
-- old table, or with the new ones before the recount, would leave a count wrong.
lock table connection, account, account_name_use in exclusive mode;

-- Applies count changes (summed per key) in key order: two statements that each take these
-- rows in one order cannot deadlock on them. PL/pgSQL, not SQL, so its two statements keep their
-- plans across calls (a SQL function plans them again at every call).
create function account_name_use_apply(tenants uuid[], keys text[], connections uuid[], deltas integer[]) returns void
language plpgsql as $$
begin
    if tenants is null then
        return;
    end if;
    insert into account_name_use as u (tenant_id, name_key, connection_id, accounts)
    select c.tenant_id, c.name_key, c.connection_id, sum(c.delta)
    from unnest(tenants, keys, connections, deltas) as c (tenant_id, name_key, connection_id, delta)
    group by c.tenant_id, c.name_key, c.connection_id
    having sum(c.delta) <> 0
    order by c.tenant_id, c.name_key, c.connection_id
    on conflict (tenant_id, name_key, connection_id) do update set accounts = u.accounts + excluded.accounts;
    delete from account_name_use u
    using unnest(tenants, keys, connections) as c (tenant_id, name_key, connection_id)
    where u.tenant_id = c.tenant_id and u.name_key = c.name_key and u.connection_id = c.connection_id and u.accounts = 0;
end $$;

-- The four trigger functions of migration 0022, each now naming the connection it counts for;
-- what they lock, and in which order, is unchanged (see 0022).
create or replace function account_name_use_on_insert_or_delete() returns trigger language plpgsql as $$
begin
    perform from changed_rows limit 1;
    if not found then
        return null;
    end if;
    perform account_name_use_apply(array_agg(o.tenant_id), array_agg(lower(r.display_name)),
                                   array_agg(o.id),
                                   array_agg(case tg_op when 'INSERT' then 1 else -1 end))
    from changed_rows r
    join (select c.id, c.tenant_id from connection c
          where c.id in (select connection_id from changed_rows) and c.state <> 'disconnected'
          order by c.id for share) o on o.id = r.connection_id
    where r.state <> 'hidden';
    return null;
end $$;

create or replace function account_name_use_on_update() returns trigger language plpgsql as $$
begin
    perform account_name_use_apply(array_agg(o.tenant_id), array_agg(o.name_key), array_agg(o.connection_id),
                                   array_agg(o.delta))
    from (select c.tenant_id, change.name_key, c.id as connection_id, change.delta
          from (values (old.connection_id, lower(old.display_name), -1, old.state <> 'hidden'),
                       (new.connection_id, lower(new.display_name), 1, new.state <> 'hidden'))
               as change (connection_id, name_key, delta, visible)
          join (select c.id, c.tenant_id from connection c
                where c.id in (old.connection_id, new.connection_id) and c.state <> 'disconnected'
                order by c.id for share) c on c.id = change.connection_id
          where change.visible) o;
    return null;
end $$;

create or replace function account_name_use_on_connection_update() returns trigger language plpgsql as $$
begin
    perform account_name_use_apply(array_agg(change.tenant_id), array_agg(lower(a.display_name)),
                                   array_agg(new.id), array_agg(change.delta))
    from (values (old.tenant_id, -1, old.state <> 'disconnected'),
                 (new.tenant_id, 1, new.state <> 'disconnected')) as change (tenant_id, delta, counted)
    cross join account a
    where change.counted and a.connection_id = new.id and a.state <> 'hidden';
    return null;
end $$;

create or replace function account_name_use_on_connection_delete() returns trigger language plpgsql as $$
begin
    if old.state <> 'disconnected' then
        perform account_name_use_apply(array_agg(old.tenant_id), array_agg(lower(a.display_name)),
                                       array_agg(old.id), array_agg(-1))
        from account a
        where a.connection_id = old.id and a.state <> 'hidden';
    end if;
    return old;
end $$;

drop function account_name_use_apply(uuid[], text[], integer[]);

-- Counted again per connection. No foreign key to `connection`: the delete trigger counts a
-- connection's rows out before the row goes, and a key would cost every count a check.
delete from account_name_use;
alter table account_name_use drop constraint account_name_use_pkey;
alter table account_name_use add column connection_id uuid not null;
alter table account_name_use add primary key (tenant_id, name_key, connection_id);
insert into account_name_use (tenant_id, name_key, connection_id, accounts)
select c.tenant_id, lower(a.display_name), c.id, count(*)
from account a join connection c on c.id = a.connection_id
where a.state <> 'hidden' and c.state <> 'disconnected'
group by 1, 2, 3;
