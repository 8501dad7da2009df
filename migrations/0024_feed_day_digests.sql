-- What each day of a connection's last applied statement reported, reduced to a digest per
-- account and day (feed::digest::DayDigests): a repeat refresh re-sends the days it already
-- applied (the overlap) as they were, and leaves them out of its writes (issue #17). Null for a
-- digest recorded before this column, or after a statement with a silent account: then no day
-- is skipped.
alter table feed_digest add column days bytea;
