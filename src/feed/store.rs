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
/// reporting inside `window_start..` as removed. A transaction whose fields did not change is
/// not touched, so running the same refresh twice changes nothing.
pub async fn apply(
    conn: &mut PgConnection,
    connection_id: Uuid,
    account_id: Uuid,
    reported: &[ReportedTransaction],
    window_start: DateTime<Utc>,
) -> Result<Changes, sqlx::Error> {
    let ids: Vec<Uuid> = reported.iter().map(|_| Uuid::now_v7()).collect();
    let fitids: Vec<String> = reported.iter().map(|t| t.fitid.clone()).collect();
    let posted: Vec<DateTime<Utc>> = reported.iter().map(|t| t.posted_at).collect();
    let amounts: Vec<Decimal> = reported.iter().map(|t| t.amount).collect();
    let currencies: Vec<String> = reported.iter().map(|t| t.currency.clone()).collect();
    let names: Vec<String> = reported.iter().map(|t| t.name.clone()).collect();
    let memos: Vec<String> = reported.iter().map(|t| t.memo.clone()).collect();
    let checks: Vec<String> = reported.iter().map(|t| t.check_number.clone()).collect();
    let pending: Vec<bool> = reported.iter().map(|t| t.pending).collect();
    let replaces: Vec<Option<String>> = reported.iter().map(|t| t.replaces_fitid.clone()).collect();
    let rows = sqlx::query!(
        r#"insert into feed_transaction (id, account_id, connection_id, fitid, posted_at, amount, currency, name, memo,
                                         check_number, pending, replaces_fitid, created_seq, change_seq)
           select t.id, $1, $2, t.fitid, t.posted, t.amount, t.currency, t.name, t.memo, t.check_number, t.pending,
                  t.replaces, t.seq, t.seq
           from (select u.*, nextval('feed_change_seq') as seq
                 from unnest($3::uuid[], $4::text[], $5::timestamptz[], $6::numeric[], $7::text[], $8::text[],
                             $9::text[], $10::text[], $11::bool[], $12::text[])
                      as u(id, fitid, posted, amount, currency, name, memo, check_number, pending, replaces)) t
           on conflict (account_id, fitid) do update set
               posted_at = excluded.posted_at, amount = excluded.amount, currency = excluded.currency,
               name = excluded.name, memo = excluded.memo, check_number = excluded.check_number,
               pending = excluded.pending, replaces_fitid = excluded.replaces_fitid, removed = false,
               change_seq = nextval('feed_change_seq'), updated_at = now()
           where (feed_transaction.posted_at, feed_transaction.amount, feed_transaction.currency, feed_transaction.name,
                  feed_transaction.memo, feed_transaction.check_number, feed_transaction.pending,
                  feed_transaction.replaces_fitid, feed_transaction.removed)
                 is distinct from
                 (excluded.posted_at, excluded.amount, excluded.currency, excluded.name, excluded.memo,
                  excluded.check_number, excluded.pending, excluded.replaces_fitid, false)
           returning (created_seq = change_seq) as "inserted!""#,
        account_id,
        connection_id,
        &ids,
        &fitids,
        &posted,
        &amounts,
        &currencies,
        &names,
        &memos,
        &checks,
        &pending,
        &replaces as &[Option<String>],
    )
    .fetch_all(&mut *conn)
    .await?;
    let added = rows.iter().filter(|row| row.inserted).count() as u64;
    let removed = sqlx::query!(
        r#"update feed_transaction set removed = true, change_seq = nextval('feed_change_seq'), updated_at = now()
           where account_id = $1 and not removed and posted_at >= $2 and not (fitid = any($3))"#,
        account_id,
        window_start,
        &fitids,
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(Changes { added, modified: rows.len() as u64 - added, removed })
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
