-- How the provider addresses an account in a request (for OFX Direct Connect its BANKACCTFROM or
-- CCACCTFROM), as the bank's last account list gave it. A refresh asks for the account list and
-- the statements of every account with a reference in one exchange, instead of waiting for the
-- list before asking for statements. Null when the bank did not list the account last time, so
-- nothing is asked for it; opaque to everything but the provider.
alter table account add column provider_ref jsonb;
