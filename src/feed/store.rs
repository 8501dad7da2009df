//! The only code that touches `feed_transaction`.

pub mod stall;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::coverage::{Range, Source};
use super::identity::{Facts, synthetic_keys};
use super::{Changes, ReportedTransaction, Transaction};

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
///
/// An account reported with no transaction at all loses only its pending ones: banks drop
/// holds, but a bank that suddenly answers empty statements for a window where it had posted
/// transactions is failing (a silent stall, `feed::stall`), not un-posting a fortnight of them.
pub async fn apply_accounts(
    conn: &mut PgConnection,
    connection_id: Uuid,
    accounts: &[(Uuid, &[ReportedTransaction])],
    window_start: DateTime<Utc>,
) -> Result<Changes, sqlx::Error> {
    let today = Utc::now().date_naive();
    let covered: Vec<Uuid> = accounts.iter().map(|(account_id, _)| *account_id).collect();
    let digest = super::digest::of(accounts);
    let days = (window_start.date_naive(), today);
    let applied = Applied { connection_id, digest: &digest, window_start };
    if cover_accounts(&mut *conn, &covered, Source::Feed, days, Some(&applied)).await? {
        return Ok(Changes::default());
    }
    adopt_imported(conn, accounts).await?;
    let rows = || accounts.iter().flat_map(|(account_id, reported)| reported.iter().map(move |t| (*account_id, t)));
    let account_ids: Vec<Uuid> = accounts.iter().map(|(account_id, _)| *account_id).collect();
    let silent_accounts: Vec<Uuid> =
        accounts.iter().filter(|(_, reported)| reported.is_empty()).map(|(account_id, _)| *account_id).collect();
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
           -- `is not true` keeps the test a probe of the (account_id, fitid) key per reported row:
           -- as an anti join, a generic plan cached while the table was small hashed a scan of
           -- all of it, and kept doing so as it grew (issue #17, session 9).
           changed as (
               select r.* from reported r
               where exists (
                   select 1 from feed_transaction f
                   where f.account_id = r.account_id and f.fitid = r.fitid and not f.removed
                     and (f.posted_at, f.amount, f.currency, f.name, f.memo, f.check_number, f.pending,
                          f.replaces_fitid)
                         is not distinct from
                         (r.posted, r.amount, r.currency, r.name, r.memo, r.check_number, r.pending, r.replaces)
               ) is not true
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
               returning (created_seq = change_seq) as inserted, change_seq
           ),
           -- Only rows the bank did not report: disjoint from the upserted ones, so no row is
           -- touched twice by this statement.
           removed as (
               update feed_transaction f set removed = true, change_seq = nextval('feed_change_seq'), updated_at = now()
               where f.account_id = any($13) and not f.removed and f.posted_at >= $14 and f.source = 'feed'
                 and (f.pending or f.account_id <> all($15))
                 and not exists (select 1 from reported r where r.account_id = f.account_id and r.fitid = f.fitid)
               returning f.change_seq
           ),
           -- What was applied, with the connection's newest change after it: the snapshot's
           -- newest (earlier statements of this transaction included) or one this statement made.
           remembered as (
               insert into feed_digest (connection_id, digest, window_start, change_seq)
               select $1, $16, $14,
                      greatest((select coalesce(max(change_seq), 0) from feed_transaction where connection_id = $1),
                               (select max(change_seq) from upserted), (select max(change_seq) from removed))
               on conflict (connection_id) do update
               set digest = excluded.digest, window_start = excluded.window_start, change_seq = excluded.change_seq
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
        &silent_accounts,
        &digest,
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

/// Imported rows the bank now reports become the feed's: by FITID when the file had the
/// bank's, else by synthetic identity (`identity`), so an import and a later refresh of the
/// same days leave one transaction each. An adopted row takes the bank's FITID.
async fn adopt_imported(
    conn: &mut PgConnection,
    accounts: &[(Uuid, &[ReportedTransaction])],
) -> Result<(), sqlx::Error> {
    let mut account_ids = Vec::new();
    let mut keys = Vec::new();
    let mut fitids = Vec::new();
    for (account_id, reported) in accounts {
        let facts: Vec<Facts<'_>> = reported
            .iter()
            .map(|t| Facts { day: t.posted_at.date_naive(), amount: t.amount, payee: &t.name })
            .collect();
        for (key, transaction) in synthetic_keys(&facts).into_iter().zip(reported.iter()) {
            account_ids.push(*account_id);
            keys.push(key);
            fitids.push(transaction.fitid.as_str());
        }
    }
    if account_ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        r#"with reported as (select * from unnest($1::uuid[], $2::text[], $3::text[]) as r(account_id, key, fitid)),
           -- Most accounts never had a file imported: one probe of the (partial) synthetic-key
           -- index says so, and neither update below looks up a reported row.
           imported as (
               select exists (select 1 from feed_transaction g
                              where g.account_id = any($1) and g.synthetic_key is not null and g.source = 'import')
                   as present
           ),
           by_fitid as (
               update feed_transaction f set source = 'feed'
               from reported r
               where (select present from imported)
                 and f.account_id = r.account_id and f.fitid = r.fitid and f.source = 'import'
               returning f.id
           )
           update feed_transaction f set fitid = r.fitid, source = 'feed', change_seq = nextval('feed_change_seq'),
                  updated_at = now()
           from reported r
           where (select present from imported)
             and f.account_id = r.account_id and f.synthetic_key = r.key and f.source = 'import'
             and f.fitid <> r.fitid
             and not exists (select 1 from feed_transaction g where g.account_id = r.account_id and g.fitid = r.fitid)"#,
        &account_ids,
        &keys,
        &fitids as &[&str],
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
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

/// Records that `source` covered an account's days `from..=to`, merged with that source's
/// overlapping or adjacent ranges in the same statement; nothing is written when one range covers it already.
pub async fn record_coverage(
    executor: impl PgExecutor<'_>,
    account_id: Uuid,
    source: Source,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(), sqlx::Error> {
    cover_accounts(executor, &[account_id], source, (from, to), None).await?;
    Ok(())
}

/// A connection's statement about to be applied, to compare with what its last apply stored.
struct Applied<'a> {
    connection_id: Uuid,
    digest: &'a [u8],
    window_start: DateTime<Utc>,
}

/// [`record_coverage`] for several accounts and the same days (a refresh asks every account of
/// a connection for one window), and in the same round trip, when `applied` is given, whether
/// that connection's last apply had the same digest over a window starting no later with no
/// transaction of the connection changed since (an import, another apply): then applying again
/// would add, modify and remove nothing, and the feed is left alone. The caller holds the
/// connection's lock, so no write of its feed commits in between.
async fn cover_accounts(
    executor: impl PgExecutor<'_>,
    account_ids: &[Uuid],
    source: Source,
    (from, to): (NaiveDate, NaiveDate),
    applied: Option<&Applied<'_>>,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"with uncovered as (
               -- Both reads go through the primary key with the array of accounts: a join of the
               -- accounts with the table was planned as a scan of all of it.
               select w.account_id from unnest($1::uuid[]) as w(account_id)
               except
               select c.account_id from account_coverage c
               where c.account_id = any($1) and c.source = $2 and c.from_day <= $3 and c.to_day >= $4
           ),
           merged as (
               delete from account_coverage c
               where c.account_id = any(array(select account_id from uncovered)) and c.source = $2
                 and c.from_day <= $4::date + 1 and c.to_day >= $3::date - 1
               returning c.account_id, c.from_day, c.to_day
           ),
           covered as (
               insert into account_coverage (account_id, source, from_day, to_day)
               select u.account_id, $2, least($3::date, min(m.from_day)), greatest($4::date, max(m.to_day))
               from uncovered u left join merged m on m.account_id = u.account_id
               group by u.account_id
           )
           select $6::bytea is not null and exists (
               select 1 from feed_digest d
               where d.connection_id = $5 and d.digest = $6 and d.window_start <= $7
                 and d.change_seq = (select coalesce(max(change_seq), 0) from feed_transaction where connection_id = $5)
           ) as "applied!""#,
        account_ids,
        source.as_str(),
        from,
        to,
        applied.map(|applied| applied.connection_id),
        applied.map(|applied| applied.digest),
        applied.map(|applied| applied.window_start),
    )
    .fetch_one(executor)
    .await
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
