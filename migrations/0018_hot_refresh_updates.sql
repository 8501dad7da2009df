-- A refresh's success rewrites last_attempt_at, last_success_at, data_as_of, failure_streak,
-- error_raw, error_at and updated_at. While any of them is in an index, every success writes a
-- new entry into every index of `connection` (PostgreSQL updates "HOT", one heap tuple and no
-- index, only when no indexed column changes and the new version fits on the same page). So no
-- index may name a column a refresh rewrites (ARCHITECTURE.md, "Per-refresh columns"; a test
-- checks the catalogue).

-- Fleet-wide `last_success_at` ranges: the connection list's staleness filter walks the listing
-- index in creation order and no statement of the service ranges over this one.
drop index connection_last_success_idx;

-- The staleness sweep's candidates were keyed by the last success itself. They are now keyed
-- by the last success the sweep has seen: a success leaves it alone, and the sweep moves it on
-- (one index write per connection per stale period, not per refresh) when it meets a candidate
-- that succeeded since. It is never later than coalesce(last_success_at, created_at), so a range
-- over it finds every connection a range over the real value would.
alter table connection add column swept_success_at timestamptz;
update connection set swept_success_at = coalesce(last_success_at, created_at);
alter table connection alter column swept_success_at set not null;

create function connection_swept_success_on_insert() returns trigger language plpgsql as $$
begin
    new.swept_success_at := coalesce(new.last_success_at, new.created_at);
    return new;
end $$;

create trigger connection_swept_success_insert before insert on connection
    for each row execute function connection_swept_success_on_insert();

-- A last success written earlier than the one the sweep saw (a replica's clock behind, a repair
-- by hand) lowers it too, so the bound holds; a success later than it, as every refresh's is,
-- fires nothing (the condition is checked before any function runs).
create function connection_swept_success_on_update() returns trigger language plpgsql as $$
begin
    new.swept_success_at := new.last_success_at;
    return new;
end $$;

create trigger connection_swept_success_update before update of last_success_at on connection
    for each row when (new.last_success_at < old.swept_success_at)
    execute function connection_swept_success_on_update();

drop index connection_stale_candidates_idx;
create index connection_stale_candidates_idx on connection (swept_success_at)
    where not stale and state <> 'disconnected';

-- Room on each page for the new version of a row, so a success stays on its page (new pages;
-- existing ones get it as they are rewritten).
alter table connection set (fillfactor = 80);

-- What a connection's last refresh applied to its feed, reduced to a digest of every account's
-- reported rows, with the window and the connection's newest change after it: a repeat refresh
-- reporting the same rows over a window starting no earlier, with nothing written in between,
-- would change nothing, so it leaves the feed alone (feed::store::apply_accounts).
create table feed_digest (
    connection_id uuid        primary key references connection (id) on delete cascade,
    digest        bytea       not null,
    window_start  timestamptz not null,
    change_seq    bigint      not null
);
