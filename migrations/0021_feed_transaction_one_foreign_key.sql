-- Issue #17: one foreign-key check per stored transaction instead of two. PostgreSQL checks a
-- foreign key row by row (a query and a row lock each); a first refresh stores hundreds of
-- rows, and the separate checks against `account` and `connection` were about a third of the
-- statement's time. The composite key also says more than the two did: a transaction's
-- connection is its account's connection. Deleting a connection still removes its
-- transactions (connection -> account -> feed_transaction, both cascading).

alter table account add constraint account_id_connection_id_key unique (id, connection_id);

alter table feed_transaction
    add constraint feed_transaction_account_connection_fkey foreign key (account_id, connection_id)
        references account (id, connection_id) on delete cascade;

alter table feed_transaction drop constraint feed_transaction_account_id_fkey;
alter table feed_transaction drop constraint feed_transaction_connection_id_fkey;
