-- Each alias carries the evidence for its meaning (title, url, confidence), so a lookup can show
-- an agent where a provider's code was checked and `match = exact` can be held to vendor sources.
alter table error_alias add column sources jsonb not null default '[]';
