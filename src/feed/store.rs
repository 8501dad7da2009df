//! The only code that touches `feed_transaction`.

mod apply;
pub mod stall;

pub use apply::{Statement, apply_statements, record_coverage};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::Transaction;
use super::coverage::{Range, Source};

/// Serialises writers of one connection's feed for the rest of the transaction, so its changes
/// commit in sequence order and the sync cursor never skips one.
pub async fn lock_connection(executor: impl PgExecutor<'_>, connection_id: Uuid) -> Result<(), sqlx::Error> {
    let (name, seed) = connection_lock(connection_id);
    sqlx::query!("select pg_advisory_xact_lock(hashtextextended($1::text, $2))", name, seed).execute(executor).await?;
    Ok(())
}

/// The advisory lock [`lock_connection`] takes, as `pg_advisory_xact_lock(hashtextextended(name,
/// seed))`: for a caller that takes it in a statement of its own (a refresh, with its job's fence).
pub fn connection_lock(connection_id: Uuid) -> (String, i64) {
    (connection_id.to_string(), 7262)
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

/// A stored transaction as an import compares against it.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub id: Uuid,
    pub fitid: String,
    pub posted_at: DateTime<Utc>,
    pub amount: Decimal,
    pub name: String,
    pub synthetic_key: Option<String>,
}

/// An account's transactions (removed ones too: importing them again would bring back what the
/// bank withdrew) posted on the days `from..=to` (UTC), in the order they were stored, but for
/// those the import `importing` wrote itself (a file is not compared with its own rows).
pub async fn stored_between(
    executor: impl PgExecutor<'_>,
    account_id: Uuid,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    importing: Uuid,
) -> Result<Vec<Stored>, sqlx::Error> {
    sqlx::query_as!(
        Stored,
        r#"select id, fitid, posted_at, amount, name, synthetic_key from feed_transaction
           where account_id = $1 and posted_at >= $2 and posted_at < $3
             and import_id is distinct from $4
           order by posted_at, created_seq"#,
        account_id,
        from,
        to,
        importing,
    )
    .fetch_all(executor)
    .await
}

/// A row of a statement file to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    pub account_id: Uuid,
    pub fitid: String,
    pub synthetic_key: String,
    pub posted_at: DateTime<Utc>,
    pub amount: Decimal,
    pub currency: String,
    pub name: String,
    pub memo: String,
    pub check_number: String,
}

/// Inserts imported rows; each takes a change number, so a sync shows them as added. A row
/// whose FITID is stored already is left alone (the caller has classified them; this guards
/// against a concurrent refresh).
pub async fn insert_imported(
    conn: &mut PgConnection,
    connection_id: Uuid,
    import_id: Uuid,
    rows: &[Imported],
) -> Result<u64, sqlx::Error> {
    let ids: Vec<Uuid> = rows.iter().map(|_| Uuid::now_v7()).collect();
    let accounts: Vec<Uuid> = rows.iter().map(|r| r.account_id).collect();
    let fitids: Vec<&str> = rows.iter().map(|r| r.fitid.as_str()).collect();
    let keys: Vec<&str> = rows.iter().map(|r| r.synthetic_key.as_str()).collect();
    let posted: Vec<DateTime<Utc>> = rows.iter().map(|r| r.posted_at).collect();
    let amounts: Vec<Decimal> = rows.iter().map(|r| r.amount).collect();
    let currencies: Vec<&str> = rows.iter().map(|r| r.currency.as_str()).collect();
    let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
    let memos: Vec<&str> = rows.iter().map(|r| r.memo.as_str()).collect();
    let checks: Vec<&str> = rows.iter().map(|r| r.check_number.as_str()).collect();
    let inserted = sqlx::query!(
        r#"insert into feed_transaction (id, account_id, connection_id, fitid, synthetic_key, posted_at, amount, currency,
                                         name, memo, check_number, source, import_id, created_seq, change_seq)
           select t.id, t.account_id, $1, t.fitid, t.key, t.posted, t.amount, t.currency, t.name, t.memo, t.check_number,
                  'import', $2, t.seq, t.seq
           from (select r.*, nextval('feed_change_seq') as seq
                 from unnest($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[], $8::numeric[],
                             $9::text[], $10::text[], $11::text[], $12::text[])
                      with ordinality as r(id, account_id, fitid, key, posted, amount, currency, name, memo, check_number, n)
                 order by r.n) t
           on conflict (account_id, fitid) do nothing"#,
        connection_id,
        import_id,
        &ids,
        &accounts,
        &fitids as &[&str],
        &keys as &[&str],
        &posted,
        &amounts,
        &currencies as &[&str],
        &names as &[&str],
        &memos as &[&str],
        &checks as &[&str],
    )
    .execute(&mut *conn)
    .await?;
    Ok(inserted.rows_affected())
}

/// Every stored coverage range of an account.
pub async fn coverage(executor: impl PgExecutor<'_>, account_id: Uuid) -> Result<Vec<Range>, sqlx::Error> {
    let rows = sqlx::query!(
        "select source, from_day, to_day from account_coverage where account_id = $1 order by from_day",
        account_id
    )
    .fetch_all(executor)
    .await?;
    rows.into_iter()
        .map(|row| {
            let source = Source::parse(&row.source)
                .ok_or_else(|| sqlx::Error::Decode(format!("unknown coverage source {:?}", row.source).into()))?;
            Ok(Range { source, from: row.from_day, to: row.to_day })
        })
        .collect()
}
