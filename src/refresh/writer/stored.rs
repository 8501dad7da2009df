//! What a batch of refreshes writes, asked of each store once for the whole batch: a constant
//! number of statements however many refreshes, accounts and transactions it holds (issue #17).
//! The caller holds every refresh's job (fenced) and its connection's feed lock; a connection
//! appears once.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::super::job::{
    distinct_accounts, listed_account, newest_data, refused_account, reported_transactions, subject,
};
use super::{Context, Success};
use crate::connection::lifecycle::{self, Subject, Succeeded};
use crate::connection::store::{self as connection_store, ListedAccount};
use crate::feed::stall::AccountStall;
use crate::feed::{self, ReportedTransaction};
use crate::incident::{self, RefreshOutcome};
use crate::provider::AccountFeed;

/// One refresh's answer as the stores take it.
struct Prepared<'a> {
    accounts: Vec<(&'a AccountFeed, Option<&'a serde_json::Value>)>,
    listed: Vec<ListedAccount<'a>>,
    /// Per listed account; `None` when its statement failed (its transactions are kept).
    reported: Vec<Option<Vec<ReportedTransaction>>>,
    newest: Option<DateTime<Utc>>,
}

impl<'a> Prepared<'a> {
    fn of(success: &'a Success) -> Self {
        let accounts = distinct_accounts(&success.fetched);
        let listed: Vec<ListedAccount<'a>> =
            accounts.iter().map(|(feed, reference)| listed_account(feed, *reference)).collect();
        let reported: Vec<Option<Vec<ReportedTransaction>>> = accounts
            .iter()
            .zip(&listed)
            .map(|((feed, _), listed)| {
                feed.error.is_none().then(|| reported_transactions(&feed.transactions, listed.reported.currency))
            })
            .collect();
        let newest = newest_data(&listed, &reported);
        Self { accounts, listed, reported, newest }
    }
}

/// Stores `successes` and returns each one's job result, in order: accounts, the feed, the
/// outcomes (and what they do to incidents), the stall judgement, then the connections' states,
/// timelines and webhooks.
pub(super) async fn store_successes(
    tx: &mut PgConnection,
    context: &Context,
    successes: &[&Success],
) -> Result<Vec<serde_json::Value>, sqlx::Error> {
    if successes.is_empty() {
        return Ok(Vec::new());
    }
    let prepared: Vec<Prepared<'_>> = successes.iter().map(|success| Prepared::of(success)).collect();
    let listing: Vec<(Uuid, &[ListedAccount<'_>])> =
        successes.iter().zip(&prepared).map(|(success, prepared)| (success.target.id, &prepared.listed[..])).collect();
    let account_ids = connection_store::store_listed_accounts(&mut *tx, &listing).await?;
    // Accounts whose statement failed keep their transactions: nothing was reported for them.
    let statements: Vec<feed::store::Statement<'_>> = successes
        .iter()
        .zip(&prepared)
        .zip(&account_ids)
        .map(|((success, prepared), ids)| feed::store::Statement {
            connection_id: success.target.id,
            accounts: ids
                .iter()
                .zip(&prepared.reported)
                .filter_map(|(account_id, reported)| reported.as_deref().map(|reported| (*account_id, reported)))
                .collect(),
            window_start: success.window_start,
        })
        .collect();
    let changes = feed::store::apply_statements(&mut *tx, &statements).await?;
    record_outcomes(tx, context, successes).await?;
    let stalled = stalls(tx, context, successes).await?;
    let results: Vec<serde_json::Value> = prepared
        .iter()
        .zip(&changes)
        .map(|(prepared, changes)| {
            serde_json::json!({
                "accounts": prepared.accounts.len(), "added": changes.added, "modified": changes.modified,
                "removed": changes.removed
            })
        })
        .collect();
    let details: Vec<serde_json::Value> = successes
        .iter()
        .zip(&results)
        .map(|(success, result)| serde_json::json!({ "job_id": success.job_id, "counts": result }))
        .collect();
    let refreshes: Vec<(Subject, Succeeded<'_>)> = successes
        .iter()
        .zip(&prepared)
        .zip(&changes)
        .zip(&details)
        .zip(&stalled)
        .map(|((((success, prepared), changes), detail), stalled)| {
            let done = Succeeded {
                job_id: success.job_id,
                at: success.now,
                data_as_of: prepared.newest,
                detail,
                added: changes.added,
                modified: changes.modified,
                removed: changes.removed,
                failure_streak: success.target.failure_streak,
                refused_account: refused_account(&prepared.accounts),
                stalled,
                trace: success.trace,
            };
            (subject(&success.target), done)
        })
        .collect();
    lifecycle::refreshes_succeeded(&mut *tx, &refreshes).await?;
    Ok(results)
}

/// Every success's outcome in one statement; an incident a success resolves is announced, and
/// its waiting refreshes brought forward, in that refresh's trace.
async fn record_outcomes(tx: &mut PgConnection, context: &Context, successes: &[&Success]) -> Result<(), sqlx::Error> {
    let outcomes: Vec<RefreshOutcome> = successes
        .iter()
        .map(|success| RefreshOutcome {
            institution_id: success.target.institution_id,
            connection_id: success.target.id,
            at: success.now,
            failure: None,
        })
        .collect();
    let effects = incident::record_all(&mut *tx, &outcomes, &context.incidents).await?;
    for (success, effect) in successes.iter().zip(&effects) {
        let Some(resolved) = &effect.resolved else { continue };
        match success.trace {
            Some(trace) => trace.scope(super::super::incident_resolved(&mut *tx, resolved)).await?,
            None => super::super::incident_resolved(&mut *tx, resolved).await?,
        }
    }
    Ok(())
}

/// Each success's stalled accounts, judged on what the store now holds (the batch's rows
/// included): one statement, which reads the history only of accounts quiet long enough to be
/// stalled.
async fn stalls(
    tx: &mut PgConnection,
    context: &Context,
    successes: &[&Success],
) -> Result<Vec<Vec<AccountStall>>, sqlx::Error> {
    let asked: Vec<feed::store::stall::Asked> = successes
        .iter()
        .map(|success| {
            let (since, today) = ((success.now - feed::stall::LOOKBACK).date_naive(), success.now.date_naive());
            let quiet_since = Some(feed::stall::quiet_since(today, context.stalls));
            feed::store::stall::Asked { connection_id: success.target.id, since, quiet_since }
        })
        .collect();
    let activity = feed::store::stall::quiet_activity(&mut *tx, &asked).await?;
    Ok(activity
        .iter()
        .zip(successes)
        .map(|(activity, success)| feed::stall::stalled(activity, success.now.date_naive(), context.stalls))
        .collect())
}
