//! The one statement the stall judgement reads: each active account's days of feed activity.

use chrono::NaiveDate;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::feed::stall::Activity;

/// Every active account of the connection with the distinct days (UTC) since `since` on which
/// the feed reported a transaction. Rows the bank later stopped showing count too: the day did
/// bring something, and an empty statement over the refresh window marks the window's rows
/// removed, which must not make an account look silent for longer than it is. One statement per
/// connection; each account's days come from `feed_transaction_account_idx` (account, posted_at).
pub async fn activity(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    since: NaiveDate,
) -> Result<Vec<Activity>, sqlx::Error> {
    accounts_activity(executor, connection_id, since, None).await
}

/// [`activity`] of the accounts with no feed transaction posted on or after `quiet_since`; the
/// others are left out. With `quiet_since` from `feed::stall::quiet_since` the judgement is the
/// same as over every account, since an account active since then cannot be stalled; and an
/// account that is active costs one probe of `feed_transaction_account_idx` instead of a year of
/// its rows (the refresh judges after every success).
pub async fn quiet_activity(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    since: NaiveDate,
    quiet_since: NaiveDate,
) -> Result<Vec<Activity>, sqlx::Error> {
    accounts_activity(executor, connection_id, since, Some(quiet_since)).await
}

/// [`activity`], left to the accounts quiet since `quiet_since` when one is given.
async fn accounts_activity(
    executor: impl PgExecutor<'_>,
    connection_id: Uuid,
    since: NaiveDate,
    quiet_since: Option<NaiveDate>,
) -> Result<Vec<Activity>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select a.id, a.display_name,
                  array(select distinct (t.posted_at at time zone 'UTC')::date
                        from feed_transaction t
                        where t.account_id = a.id and t.posted_at >= ($2::date)::timestamp at time zone 'UTC'
                          and t.source = 'feed'
                        order by 1) as "days!: Vec<NaiveDate>"
           from account a
           where a.connection_id = $1 and a.state = 'active'
             and ($3::date is null
                  or not exists (select 1 from feed_transaction r
                                 where r.account_id = a.id and r.posted_at >= ($3::date)::timestamp at time zone 'UTC'
                                   and r.source = 'feed'))
           order by a.created_at, a.id"#,
        connection_id,
        since,
        quiet_since,
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Activity { account_id: row.id, account_name: row.display_name, days: row.days })
        .collect())
}
