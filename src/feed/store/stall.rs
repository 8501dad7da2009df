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
    let asked = Asked { connection_id, since, quiet_since: None };
    Ok(accounts_activity(executor, &[asked]).await?.pop().unwrap_or_default())
}

/// What to read of one connection: its accounts' days since `since`, only of the accounts with
/// no feed transaction posted on or after `quiet_since` when that is given. With `quiet_since`
/// from `feed::stall::quiet_since` the judgement is the same as over every account, since an
/// account active since then cannot be stalled; and an account that is active costs one probe of
/// `feed_transaction_account_idx` instead of a year of its rows (the refresh judges after every
/// success).
#[derive(Debug, Clone, Copy)]
pub struct Asked {
    pub connection_id: Uuid,
    pub since: NaiveDate,
    pub quiet_since: Option<NaiveDate>,
}

/// [`activity`] of several connections (a batch of refreshes) in one statement, each as asked;
/// one list per connection, in order.
pub async fn quiet_activity(executor: impl PgExecutor<'_>, asked: &[Asked]) -> Result<Vec<Vec<Activity>>, sqlx::Error> {
    accounts_activity(executor, asked).await
}

async fn accounts_activity(executor: impl PgExecutor<'_>, asked: &[Asked]) -> Result<Vec<Vec<Activity>>, sqlx::Error> {
    let connections: Vec<Uuid> = asked.iter().map(|asked| asked.connection_id).collect();
    let since: Vec<NaiveDate> = asked.iter().map(|asked| asked.since).collect();
    let quiet_since: Vec<Option<NaiveDate>> = asked.iter().map(|asked| asked.quiet_since).collect();
    // `offset 0` keeps each connection's accounts a probe of the account table by connection,
    // never a join the planner could turn into a scan of all of it.
    let rows = sqlx::query!(
        r#"select q.n as "n!", a.id as "id!", a.display_name as "display_name!",
                  array(select distinct (t.posted_at at time zone 'UTC')::date
                        from feed_transaction t
                        where t.account_id = a.id and t.posted_at >= (q.since)::timestamp at time zone 'UTC'
                          and t.source = 'feed'
                        order by 1) as "days!: Vec<NaiveDate>"
           from unnest($1::uuid[], $2::date[], $3::date[]) with ordinality as q(connection_id, since, quiet_since, n),
                lateral (select a.id, a.display_name, a.created_at from account a
                         where a.connection_id = q.connection_id and a.state = 'active'
                           and (q.quiet_since is null
                                or not exists (select 1 from feed_transaction r
                                               where r.account_id = a.id
                                                 and r.posted_at >= (q.quiet_since)::timestamp at time zone 'UTC'
                                                 and r.source = 'feed'))
                         offset 0) a
           order by q.n, a.created_at, a.id"#,
        &connections,
        &since,
        &quiet_since as &[Option<NaiveDate>],
    )
    .fetch_all(executor)
    .await?;
    let mut activity: Vec<Vec<Activity>> = asked.iter().map(|_| Vec::new()).collect();
    for row in rows {
        let slot = usize::try_from(row.n - 1).ok().and_then(|n| activity.get_mut(n));
        let slot = slot.ok_or_else(|| sqlx::Error::Decode("an activity row of no connection asked".into()))?;
        slot.push(Activity { account_id: row.id, account_name: row.display_name, days: row.days });
    }
    Ok(activity)
}
