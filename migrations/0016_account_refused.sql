-- An account whose statements the bank refuses (709: not enabled for online access) while the
-- connection's other accounts refresh gets a state of its own, so it does not pass for active.
alter table account drop constraint account_state_check;
alter table account add constraint account_state_check
    check (state in ('active', 'closed', 'not_found', 'hidden', 'refused'));
