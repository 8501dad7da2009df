//! What a refresh's statement does to the feed. The refresh writer stores a batch of refreshes
//! in one transaction, so every connection of the batch is applied together: the coverage and
//! "nothing new" check, the adoption of imported rows and the upsert are one statement each for
//! the whole batch, whatever its number of connections, accounts and transactions (issue #17).

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use crate::feed::coverage::Source;
use crate::feed::digest::DayDigests;
use crate::feed::identity::{Facts, synthetic_keys};
use crate::feed::{Changes, ReportedTransaction};

/// One connection's statement: what the bank reported for each of its accounts (an account
/// appears once) over the window that starts at `window_start` and ends today.
#[derive(Debug, Clone)]
pub struct Statement<'a> {
    pub connection_id: Uuid,
    pub accounts: Vec<(Uuid, &'a [ReportedTransaction])>,
    pub window_start: DateTime<Utc>,
}

/// Applies each connection's statement (a connection appears once; the caller holds each one's
/// lock), in at most three statements for all of them, and returns what each changed, in order.
/// Every reported transaction is upserted by (account, FITID) (an account with no stored row yet
/// is inserted into without the upsert's costs), and the transactions of these
/// accounts posted inside the window that the bank no longer reports are marked removed. A
/// transaction whose fields did not change is not touched, so applying the same statement twice
/// changes nothing; a connection whose last apply had the same digest over a window starting no
/// later, with none of its transactions changed since, is left alone altogether.
///
/// An account reported with no transaction at all loses only its pending ones: banks drop
/// holds, but a bank that suddenly answers empty statements for a window where it had posted
/// transactions is failing (a silent stall, `feed::stall`), not un-posting a fortnight of them.
pub async fn apply_statements(
    conn: &mut PgConnection,
    statements: &[Statement<'_>],
) -> Result<Vec<Changes>, sqlx::Error> {
    let today = Utc::now().date_naive();
    let day_digests: Vec<DayDigests> = statements.iter().map(|statement| DayDigests::of(&statement.accounts)).collect();
    let digests: Vec<Vec<u8>> =
        statements.iter().zip(&day_digests).map(|(statement, days)| days.of_statement(&statement.accounts)).collect();
    let wanted: Vec<(Uuid, NaiveDate, NaiveDate)> = statements
        .iter()
        .flat_map(|statement| {
            let from = statement.window_start.date_naive();
            statement.accounts.iter().map(move |(account_id, _)| (*account_id, from, today))
        })
        .collect();
    let applied: Vec<Applied<'_>> = statements
        .iter()
        .zip(&digests)
        .zip(&day_digests)
        .map(|((statement, digest), days)| Applied {
            connection_id: statement.connection_id,
            digest,
            // After a statement with a silent account, whose posted rows were kept rather than
            // removed, the stored days are not what it reported: no day of the next one is skipped.
            days: (!statement.accounts.iter().any(|(_, reported)| reported.is_empty())).then(|| days.encode()),
            window_start: statement.window_start,
        })
        .collect();
    let recorded = cover(&mut *conn, &wanted, Source::Feed, &applied).await?;
    let mut changes = vec![Changes::default(); statements.len()];
    let mut writes = Vec::new();
    let mut changing = Vec::new();
    let mut changing_at = Vec::new();
    for (n, (statement, recorded)) in statements.iter().zip(recorded).enumerate() {
        if recorded.unchanged {
            continue;
        }
        let earlier = recorded.days.as_deref().and_then(DayDigests::decode);
        writes.push(Writes::of(statement, &day_digests[n], earlier.as_ref()));
        changing.push(&applied[n]);
        changing_at.push(n);
    }
    if writes.is_empty() {
        return Ok(changes);
    }
    adopt_imported(&mut *conn, &writes).await?;
    let counted = upsert(conn, &writes, &changing).await?;
    for (n, counted) in changing_at.into_iter().zip(counted) {
        changes[n] = counted;
    }
    Ok(changes)
}

/// What one connection's statement writes: each account's reported rows less the days that its
/// last apply already wrote as they are now, and where its removals start.
struct Writes<'a> {
    connection_id: Uuid,
    accounts: Vec<AccountWrites<'a>>,
}

struct AccountWrites<'a> {
    account_id: Uuid,
    rows: Vec<&'a ReportedTransaction>,
    /// The window's start, or the first day on which the statement differs from the last one.
    removals_from: DateTime<Utc>,
    /// The bank reported no transaction at all for it (then only pending ones are removed).
    silent: bool,
}

impl<'a> Writes<'a> {
    /// `earlier`: the days the connection's last apply reported, when nothing of its feed changed
    /// since and its window started no later. A day reported as it was then is left out of the
    /// upsert and of the removals: applying it again would add, modify and remove nothing, as the
    /// whole statement's digest already says when every day is the same. The days skipped are
    /// the window's first ones, up to the first that differs, so the removals keep one lower
    /// bound per account. A window starts at midnight (`refresh::window_start`), so its first day
    /// is whole in both statements.
    fn of(statement: &Statement<'a>, days: &DayDigests, earlier: Option<&DayDigests>) -> Self {
        let from = statement.window_start.date_naive();
        let accounts = statement
            .accounts
            .iter()
            .map(|(account_id, reported)| {
                let silent = reported.is_empty();
                let differs_from = match earlier {
                    Some(earlier) if !silent => days.first_difference(earlier, *account_id, from),
                    _ => Some(from),
                };
                let skipped = |day: NaiveDate| day >= from && differs_from.is_none_or(|differs| day < differs);
                AccountWrites {
                    account_id: *account_id,
                    rows: reported.iter().filter(|t| !skipped(t.posted_at.date_naive())).collect(),
                    removals_from: match differs_from {
                        Some(day) if day > from => day.and_time(NaiveTime::MIN).and_utc(),
                        Some(_) => statement.window_start,
                        // Every day is as it was: nothing from the window on is removed.
                        None => DateTime::<Utc>::MAX_UTC,
                    },
                    silent,
                }
            })
            .collect();
        Self { connection_id: statement.connection_id, accounts }
    }
}

/// The upsert of [`apply_statements`] for the statements that changed something.
async fn upsert(
    conn: &mut PgConnection,
    writes: &[Writes<'_>],
    applied: &[&Applied<'_>],
) -> Result<Vec<Changes>, sqlx::Error> {
    let rows = || {
        writes.iter().flat_map(|writes| {
            writes.accounts.iter().flat_map(move |account| {
                account.rows.iter().map(move |t| (writes.connection_id, account.account_id, *t))
            })
        })
    };
    let accounts = || writes.iter().flat_map(|writes| writes.accounts.iter());
    let row_connections: Vec<Uuid> = rows().map(|(connection_id, _, _)| connection_id).collect();
    let row_accounts: Vec<Uuid> = rows().map(|(_, account_id, _)| account_id).collect();
    let ids: Vec<Uuid> = rows().map(|_| Uuid::now_v7()).collect();
    let fitids: Vec<&str> = rows().map(|(_, _, t)| t.fitid.as_str()).collect();
    let posted: Vec<DateTime<Utc>> = rows().map(|(_, _, t)| t.posted_at).collect();
    let amounts: Vec<Decimal> = rows().map(|(_, _, t)| t.amount).collect();
    let currencies: Vec<&str> = rows().map(|(_, _, t)| t.currency.as_str()).collect();
    let names: Vec<&str> = rows().map(|(_, _, t)| t.name.as_str()).collect();
    let memos: Vec<&str> = rows().map(|(_, _, t)| t.memo.as_str()).collect();
    let checks: Vec<&str> = rows().map(|(_, _, t)| t.check_number.as_str()).collect();
    let pending: Vec<bool> = rows().map(|(_, _, t)| t.pending).collect();
    let replaces: Vec<Option<&str>> = rows().map(|(_, _, t)| t.replaces_fitid.as_deref()).collect();
    let account_ids: Vec<Uuid> = accounts().map(|account| account.account_id).collect();
    let account_windows: Vec<DateTime<Utc>> = accounts().map(|account| account.removals_from).collect();
    let silent: Vec<bool> = accounts().map(|account| account.silent).collect();
    // The index probe's lower bound; each account's own window is applied to what it reads.
    let earliest = account_windows.iter().min().copied().unwrap_or_else(Utc::now);
    let connection_ids: Vec<Uuid> = applied.iter().map(|applied| applied.connection_id).collect();
    let digests: Vec<&[u8]> = applied.iter().map(|applied| applied.digest).collect();
    let windows: Vec<DateTime<Utc>> = applied.iter().map(|applied| applied.window_start).collect();
    let days: Vec<Option<&[u8]>> = applied.iter().map(|applied| applied.days.as_deref()).collect();
    let counts = sqlx::query!(
        r#"with reported as (
               select * from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::timestamptz[], $6::numeric[],
                                    $7::text[], $8::text[], $9::text[], $10::text[], $11::bool[], $12::text[])
                   as r(connection_id, account_id, id, fitid, posted, amount, currency, name, memo, check_number,
                        pending, replaces)
           ),
           -- An account with no row stored at all (its first refresh) cannot meet a conflict:
           -- whoever writes a connection's rows holds its lock, as the caller does. Its rows are
           -- inserted plainly, without the probe below and an upsert's speculative insertion,
           -- which cost each row as much as the insert itself (issue #17, session 26). The probe
           -- is `is not true` for the reason given below for `changed`.
           empty as (
               select a.account_id from (select distinct account_id from reported) a
               where exists (select 1 from feed_transaction f where f.account_id = a.account_id) is not true
           ),
           added as (
               insert into feed_transaction (id, account_id, connection_id, fitid, posted_at, amount, currency, name,
                                             memo, check_number, pending, replaces_fitid, created_seq, change_seq)
               select t.id, t.account_id, t.connection_id, t.fitid, t.posted, t.amount, t.currency, t.name, t.memo,
                      t.check_number, t.pending, t.replaces, t.seq, t.seq
               from (select r.*, nextval('feed_change_seq') as seq from reported r
                     where r.account_id in (select account_id from empty)) t
               returning connection_id, true as inserted, change_seq
           ),
           -- Most of a repeat refresh is transactions stored already as they are: they are left
           -- out before the upsert, which would otherwise lock (and so write) each of their rows.
           -- `is not true` keeps the test a probe of the (account_id, fitid) key per reported row:
           -- as an anti join, a generic plan cached while the table was small hashed a scan of
           -- all of it, and kept doing so as it grew (issue #17, session 9).
           changed as (
               select r.* from reported r
               where r.account_id not in (select account_id from empty)
                 and exists (
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
               select t.id, t.account_id, t.connection_id, t.fitid, t.posted, t.amount, t.currency, t.name, t.memo,
                      t.check_number, t.pending, t.replaces, t.seq, t.seq
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
               returning connection_id, (created_seq = change_seq) as inserted, change_seq
           ),
           -- Only rows the bank did not report: disjoint from the upserted ones, so no row is
           -- touched twice by this statement. One probe of (account_id, posted_at) per account
           -- from the batch's earliest window, each account's own window and silence then read
           -- from the arrays, and the reported rows left out by a hashed `not in`: as joins with
           -- the accounts and the reported rows, a generic plan hashed a scan of the whole table
           -- and tested every window row against every reported row of the batch.
           removed as (
               update feed_transaction f set removed = true, change_seq = nextval('feed_change_seq'), updated_at = now()
               where f.account_id = any($13) and f.posted_at >= $19 and not f.removed and f.source = 'feed'
                 and f.posted_at >= ($14::timestamptz[])[array_position($13, f.account_id)]
                 and (f.pending or not ($15::bool[])[array_position($13, f.account_id)])
                 and (f.account_id, f.fitid) not in (select r.account_id, r.fitid from reported r)
               returning f.connection_id, f.change_seq
           ),
           applied as (
               select * from unnest($16::uuid[], $17::bytea[], $18::timestamptz[], $20::bytea[])
                   with ordinality as s(connection_id, digest, window_start, days, n)
           ),
           upserts as (
               select connection_id, count(*) filter (where inserted) as added,
                      count(*) filter (where not inserted) as modified, max(change_seq) as newest
               from (select * from upserted union all select * from added) written group by connection_id
           ),
           removals as (
               select connection_id, count(*) as removed, max(change_seq) as newest from removed group by connection_id
           ),
           -- What was applied, with each connection's newest change after it: the snapshot's
           -- newest (earlier statements of this transaction included) or one this statement made.
           remembered as (
               insert into feed_digest (connection_id, digest, window_start, change_seq, days)
               select s.connection_id, s.digest, s.window_start,
                      greatest((select coalesce(max(t.change_seq), 0) from feed_transaction t
                                where t.connection_id = s.connection_id),
                               u.newest, m.newest),
                      s.days
               from applied s left join upserts u using (connection_id) left join removals m using (connection_id)
               on conflict (connection_id) do update
               set digest = excluded.digest, window_start = excluded.window_start, change_seq = excluded.change_seq,
                   days = excluded.days
           )
           select coalesce(u.added, 0) as "added!", coalesce(u.modified, 0) as "modified!",
                  coalesce(m.removed, 0) as "removed!"
           from applied s left join upserts u using (connection_id) left join removals m using (connection_id)
           order by s.n"#,
        &row_connections,
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
        &account_windows,
        &silent,
        &connection_ids,
        &digests as &[&[u8]],
        &windows,
        earliest,
        &days as &[Option<&[u8]>],
    )
    .fetch_all(&mut *conn)
    .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    Ok(counts
        .into_iter()
        .map(|row| Changes { added: count(row.added), modified: count(row.modified), removed: count(row.removed) })
        .collect())
}

/// Imported rows the bank now reports become the feed's: by FITID when the file had the
/// bank's, else by synthetic identity (`identity`), so an import and a later refresh of the
/// same days leave one transaction each. An adopted row takes the bank's FITID.
///
/// Rows are left out by whole days only: a synthetic identity counts its occurrences within a
/// day, so the keys of the days kept are those of the whole statement.
async fn adopt_imported(conn: &mut PgConnection, writes: &[Writes<'_>]) -> Result<(), sqlx::Error> {
    let mut account_ids = Vec::new();
    let mut keys = Vec::new();
    let mut fitids = Vec::new();
    for account in writes.iter().flat_map(|writes| writes.accounts.iter()) {
        let facts: Vec<Facts<'_>> = account
            .rows
            .iter()
            .map(|t| Facts { day: t.posted_at.date_naive(), amount: t.amount, payee: &t.name })
            .collect();
        for (key, transaction) in synthetic_keys(&facts).into_iter().zip(account.rows.iter()) {
            account_ids.push(account.account_id);
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

/// Records that `source` covered an account's days `from..=to`, merged with that source's
/// overlapping or adjacent ranges in the same statement; nothing is written when one range covers it already.
pub async fn record_coverage(
    executor: impl PgExecutor<'_>,
    account_id: Uuid,
    source: Source,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(), sqlx::Error> {
    cover(executor, &[(account_id, from, to)], source, &[]).await?;
    Ok(())
}

/// A connection's statement about to be applied, to compare with what its last apply stored.
struct Applied<'a> {
    connection_id: Uuid,
    digest: &'a [u8],
    /// Its days ([`DayDigests::encode`]), or None when the next statement may skip none.
    days: Option<Vec<u8>>,
    window_start: DateTime<Utc>,
}

/// What a connection's last apply left, as [`cover`] reads it.
struct Recorded {
    /// The same digest: applying again would change nothing.
    unchanged: bool,
    /// Its days, when nothing of its feed changed since and its window started no later.
    days: Option<Vec<u8>>,
}

/// [`record_coverage`] for several accounts, each with its days, and in the same round trip,
/// for each of `applied`, whether that connection's last apply had the same digest over a window
/// starting no later with no transaction of the connection changed since (an import, another
/// apply): then applying again would add, modify and remove nothing, and the feed is left alone.
/// The caller holds each connection's lock, so no write of its feed commits in between. An
/// account appears once.
async fn cover(
    executor: impl PgExecutor<'_>,
    wanted: &[(Uuid, NaiveDate, NaiveDate)],
    source: Source,
    applied: &[Applied<'_>],
) -> Result<Vec<Recorded>, sqlx::Error> {
    let account_ids: Vec<Uuid> = wanted.iter().map(|(account_id, _, _)| *account_id).collect();
    let froms: Vec<NaiveDate> = wanted.iter().map(|(_, from, _)| *from).collect();
    let tos: Vec<NaiveDate> = wanted.iter().map(|(_, _, to)| *to).collect();
    let connection_ids: Vec<Uuid> = applied.iter().map(|applied| applied.connection_id).collect();
    let digests: Vec<&[u8]> = applied.iter().map(|applied| applied.digest).collect();
    let windows: Vec<DateTime<Utc>> = applied.iter().map(|applied| applied.window_start).collect();
    let rows = sqlx::query!(
        r#"with wanted as (
               select * from unnest($1::uuid[], $2::date[], $3::date[]) as w(account_id, from_day, to_day)
           ),
           -- Each test is a probe of the primary key (`is not true` is not turned into an anti
           -- join): a join of the accounts with the table was planned as a scan of all of it.
           uncovered as (
               select w.* from wanted w
               where exists (select 1 from account_coverage c
                             where c.account_id = w.account_id and c.source = $4
                               and c.from_day <= w.from_day and c.to_day >= w.to_day) is not true
           ),
           merged as (
               delete from account_coverage c
               using uncovered u
               where c.account_id = any(array(select account_id from uncovered)) and c.account_id = u.account_id
                 and c.source = $4 and c.from_day <= u.to_day + 1 and c.to_day >= u.from_day - 1
               returning c.account_id, c.from_day, c.to_day
           ),
           covered as (
               insert into account_coverage (account_id, source, from_day, to_day)
               select u.account_id, $4, least(min(u.from_day), min(m.from_day)), greatest(max(u.to_day), max(m.to_day))
               from uncovered u left join merged m on m.account_id = u.account_id
               group by u.account_id
           )
           select coalesce(d.digest = s.digest, false) as "unchanged!", d.days
           from unnest($5::uuid[], $6::bytea[], $7::timestamptz[]) with ordinality
                as s(connection_id, digest, window_start, n)
                left join lateral (
                    select d.digest, d.days from feed_digest d
                    where d.connection_id = s.connection_id and d.window_start <= s.window_start
                      and d.change_seq = (select coalesce(max(t.change_seq), 0) from feed_transaction t
                                          where t.connection_id = s.connection_id)
                ) d on true
           order by s.n"#,
        &account_ids,
        &froms,
        &tos,
        source.as_str(),
        &connection_ids,
        &digests as &[&[u8]],
        &windows,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|row| Recorded { unchanged: row.unchanged, days: row.days }).collect())
}
