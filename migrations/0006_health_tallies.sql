-- Fleet health in near-constant time: connection counts by state, error code and staleness are
-- kept as tallies, so a dashboard over a million connections reads a few hundred rows.
--
-- Why a delta log instead of counters updated in place: every state change of one institution
-- (a first refresh turning syncing into healthy, a bank outage turning a thousand connections
-- into bank_issue) would update the same counter rows and serialise those refreshes on their
-- row locks until commit. Instead, statement triggers on `connection` append net deltas to
-- `health_delta` (no row is ever updated, so writers never wait on each other), and a rollup
-- (one replica at a time, under an advisory lock) folds committed deltas into the tallies.
-- Readers add the few pending deltas to the tallies, so counts are exact at every moment.

-- Set by the staleness sweep when a connection has gone without a success for longer than the
-- configured limit, cleared by the next success; the tallies count it like a state.
alter table connection add column stale boolean not null default false;

-- Dashboard lists filter by state, error code or institution and page in creation order: with
-- the keyset columns in the index, a page reads its fifty rows instead of sorting every match.
drop index connection_state_idx;
create index connection_state_idx on connection (state, created_at, id);
drop index connection_error_idx;
create index connection_error_idx on connection (error_code, created_at, id) where error_code is not null;
create index connection_institution_listing_idx on connection (institution_id, created_at, id);

-- The sweep's candidates, so it does not scan the fleet.
create index connection_stale_candidates_idx on connection (coalesce(last_success_at, created_at))
    where not stale and state <> 'disconnected';

create table health_delta (
    id             bigint  generated always as identity primary key,
    institution_id uuid    not null,
    state          text    not null,
    -- 0 stands for "no error", so the tallies' keys need no nullable column.
    error_code     integer not null,
    stale          boolean not null,
    delta          integer not null
);

-- By (state, error code, staleness) across the fleet: the totals of the summary.
create table health_tally (
    state       text    not null,
    error_code  integer not null,
    stale       boolean not null,
    connections bigint  not null,
    primary key (state, error_code, stale)
);

-- The same per institution: the summary scoped to one institution.
create table institution_health_tally (
    institution_id uuid    not null,
    state          text    not null,
    error_code     integer not null,
    stale          boolean not null,
    connections    bigint  not null,
    primary key (institution_id, state, error_code, stale)
);

-- One row per institution: the "failing institutions" ranking reads the top N by index.
create table institution_health (
    institution_id uuid   primary key,
    connections    bigint not null,
    -- Connections in degraded, needs_user_action, bank_issue or provider_issue.
    failing        bigint not null,
    stale          bigint not null
);

create index institution_health_failing_idx on institution_health (failing desc, institution_id);

create function health_is_failing(state text) returns boolean language sql immutable as
$$ select state in ('degraded', 'needs_user_action', 'bank_issue', 'provider_issue') $$;

create function connection_tally_on_insert() returns trigger language plpgsql as $$
begin
    insert into health_delta (institution_id, state, error_code, stale, delta)
    select institution_id, state, coalesce(error_code, 0), stale, count(*)
    from new_rows group by 1, 2, 3, 4;
    return null;
end $$;

-- Most updates (a success on a healthy connection) net to nothing and write nothing.
create function connection_tally_on_update() returns trigger language plpgsql as $$
begin
    insert into health_delta (institution_id, state, error_code, stale, delta)
    select institution_id, state, error_code, stale, sum(delta)
    from (select institution_id, state, coalesce(error_code, 0) as error_code, stale, 1 as delta from new_rows
          union all
          select institution_id, state, coalesce(error_code, 0), stale, -1 from old_rows) change
    group by 1, 2, 3, 4
    having sum(delta) <> 0;
    return null;
end $$;

create function connection_tally_on_delete() returns trigger language plpgsql as $$
begin
    insert into health_delta (institution_id, state, error_code, stale, delta)
    select institution_id, state, coalesce(error_code, 0), stale, -count(*)
    from old_rows group by 1, 2, 3, 4;
    return null;
end $$;

create trigger connection_tally_insert after insert on connection
    referencing new table as new_rows for each statement execute function connection_tally_on_insert();
create trigger connection_tally_update after update on connection
    referencing old table as old_rows new table as new_rows for each statement execute function connection_tally_on_update();
create trigger connection_tally_delete after delete on connection
    referencing old table as old_rows for each statement execute function connection_tally_on_delete();

-- The connections that exist already start the tallies.
insert into health_delta (institution_id, state, error_code, stale, delta)
select institution_id, state, coalesce(error_code, 0), stale, count(*) from connection group by 1, 2, 3, 4;
