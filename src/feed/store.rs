//! The only code that touches `feed_transaction`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::{Changes, ReportedTransaction, Transaction};

/// Serialises writers of one connection's feed for the rest of the transaction, so its changes
/// commit in sequence order and the sync cursor never skips one.
pub async fn lock_connection(executor: impl PgExecutor<'_>, connection_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended($1::text, 7262))", connection_id.to_string())
        .execute(executor)
        .await?;
    Ok(())
}

/// Upserts an account's reported transactions by FITID and marks those the bank stopped
/// reporting inside `window_start..` as removed; see [`apply_accounts`].
pub async fn apply(
    conn: &mut PgConnection,
    connection_id: Uuid,
    account_id: Uuid,
    reported: &[ReportedTransaction],
    window_start: DateTime<Utc>,
) -> Result<Changes, sqlx::Error> {
    apply_accounts(conn, connection_id, &[(account_id, reported)], window_start).await
}

/// [`apply`] for several accounts of one connection in one statement, whatever their number of
/// transactions: upserts every reported transaction by (account, FITID), and marks as removed
/// the transactions of these accounts posted inside `window_start..` that the bank no longer
/// reports. A transaction whose fields did not change is not touched, so running the same
/// refresh twice changes nothing. An account must appear once.
pub async fn apply_accounts(
    conn: &mut PgConnection,
    connection_id: Uuid,
    accounts: &[(Uuid, &[ReportedTransaction])],
    window_start: DateTime<Utc>,
) -> Result<Changes, sqlx::Error> {
    let rows = || accounts.iter().flat_map(|(account_id, reported)| reported.iter().map(move |t| (*account_id, t)));
    let account_ids: Vec<Uuid> = accounts.iter().map(|(account_id, _)| *account_id).collect();
    let row_accounts: Vec<Uuid> = rows().map(|(account_id, _)| account_id).collect();
    let ids: Vec<Uuid> = rows().map(|_| Uuid::now_v7()).collect();
    let fitids: Vec<&str> = rows().map(|(_, t)| t.fitid.as_str()).collect();
    let posted: Vec<DateTime<Utc>> = rows().map(|(_, t)| t.posted_at).collect();
    let amounts: Vec<Decimal> = rows().map(|(_, t)| t.amount).collect();
    let currencies: Vec<&str> = rows().map(|(_, t)| t.currency.as_str()).collect();
    let names: Vec<&str> = rows().map(|(_, t)| t.name.as_str()).collect();
    let memos: Vec<&str> = rows().map(|(_, t)| t.memo.as_str()).collect();
    let checks: Vec<&str> = rows().map(|(_, t)| t.check_number.as_str()).collect();
    let pending: Vec<bool> = rows().map(|(_, t)| t.pending).collect();
    let replaces: Vec<Option<&str>> = rows().map(|(_, t)| t.replaces_fitid.as_deref()).collect();
    let counts = sqlx::query!(
        r#"with reported as (
               select * from unnest($2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::numeric[], $7::text[],
                                    $8::text[], $9::text[], $10::text[], $11::bool[], $12::text[])
                   as r(account_id, id, fitid, posted, amount, currency, name, memo, check_number, pending, replaces)
           ),
           -- Most of a repeat refresh is transactions stored already as they are: they are left
           -- out before the upsert, which would otherwise lock (and so write) each of their rows.
           changed as (
               select r.* from reported r
               where not exists (
                   select 1 from feed_transaction f
                   where f.account_id = r.account_id and f.fitid = r.fitid and not f.removed
                     and (f.posted_at, f.amount, f.currency, f.name, f.memo, f.check_number, f.pending,
                          f.replaces_fitid)
                         is not distinct from
                         (r.posted, r.amount, r.currency, r.name, r.memo, r.check_number, r.pending, r.replaces))
           ),
           upserted as (
               insert into feed_transaction (id, account_id, connection_id, fitid, posted_at, amount, currency, name,
                                             memo, check_number, pending, replaces_fitid, created_seq, change_seq)
               select t.id, t.account_id, $1, t.fitid, t.posted, t.amount, t.currency, t.name, t.memo, t.check_number,
                      t.pending, t.replaces, t.seq, t.seq
               from (select c.*, nextval('feed_change_seq') as seq from changed c) t
               on conflict (account_id, fitid) do update set
                   posted_at = excluded.posted_at, amount = excluded.amount, currency = excluded.currency,
                   name = excluded.name, memo = excluded.memo, check_number = excluded.check_number,
                   pending = excluded.pending, replaces_fitid = excluded.replaces_fitid, removed = false,
                   change_seq = nextval('feed_change_seq'), updated_at = now()
               where (feed_transaction.posted_at, feed_transaction.amount, feed_transaction.currency,
                      feed_transaction.name, feed_transaction.memo, feed_transaction.check_number,
                      feed_transaction.pending, feed_transaction.replaces_fitid, feed_transaction.removed)
                     is distinct from
                     (excluded.posted_at, excluded.amount, excluded.currency, excluded.name, excluded.memo,
                      excluded.check_number, excluded.pending, excluded.replaces_fitid, false)
               returning (created_seq = change_seq) as inserted
           ),
           -- Only rows the bank did not report: disjoint from the upserted ones, so no row is
           -- touched twice by this statement.
           removed as (
               update feed_transaction f set removed = true, change_seq = nextval('feed_change_seq'), updated_at = now()
               where f.account_id = any($13) and not f.removed and f.posted_at >= $14
                 and not exists (select 1 from reported r where r.account_id = f.account_id and r.fitid = f.fitid)
               returning 1
           )
           select (select count(*) from upserted where inserted) as "added!",
                  (select count(*) from upserted where not inserted) as "modified!",
                  (select count(*) from removed) as "removed!""#,
        connection_id,
        &row_accounts,
        &ids,
        &fitids as &[&str],
        &posted,
        &amounts,
        &currencies as &[&str],
        &names as &[&str],
        &memos as &[&str],
        &checks as &[&str],
        &pending,
        &replaces as &[Option<&str>],
        &account_ids,
        window_start,
    )
    .fetch_one(&mut *conn)
    .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(Changes { added: count(counts.added), modified: count(counts.modified), removed: count(counts.removed) })
}

/// Changes of a connection after `cursor`, in change order; one more than `limit` to tell
/// whether another page follows.
pub async fn changes_after(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    cursor: i64,
    limit: i64,
) -> Result<Vec<Transaction>, sqlx::Error> {
    sqlx::query_as!(
        Transaction,
        r#"select id, account_id, connection_id, fitid, posted_at, amount, currency, name, memo, check_number, pending,
                  replaces_fitid, removed, created_seq, change_seq
           from feed_transaction where connection_id = $1 and change_seq > $2
           order by change_seq limit $3"#,
        connection_id,
        cursor,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// An account's live transactions posted in `[from, to)`, in posting order, after a position.
pub async fn for_account(
    executor: impl PgExecutor<'_>,
    account_id: Uuid,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Transaction>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        Transaction,
        r#"select id, account_id, connection_id, fitid, posted_at, amount, currency, name, memo, check_number, pending,
                  replaces_fitid, removed, created_seq, change_seq
           from feed_transaction
           where account_id = $1 and not removed
             and ($2::timestamptz is null or posted_at >= $2) and ($3::timestamptz is null or posted_at < $3)
             and ($4::timestamptz is null or (posted_at, id) > ($4, $5::uuid))
           order by posted_at, id limit $6"#,
        account_id,
        from,
        to,
        after_time,
        after_id,
        limit,
    )
    .fetch_all(executor)
    .await
}

/// The newest posting date of a connection's live transactions: "data as of".
pub async fn newest_posting(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar!(
        "select max(posted_at) from feed_transaction where connection_id = $1 and not removed",
        connection_id
    )
    .fetch_one(executor)
    .await
}
