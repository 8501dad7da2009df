//! The refresh job's handler: open the connection's credentials, ask the institution's
//! provider, then in one transaction (fenced by the job's attempt and serialised per connection)
//! upsert accounts and transactions and record the outcome. Running it twice changes nothing the
//! second time.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use secrecy::SecretString;
use sqlx::PgPool;
use uuid::Uuid;

use super::reader::{Read, Reader};
use super::writer::{Context, Success, Writer, Written};
use super::{SANDBOX_SLUG_PREFIX, retry, window_start};
use crate::catalog::{CatalogHandle, Code};
use crate::connection::lifecycle::{self, Failed, Subject};
use crate::connection::store::{ListedAccount, RefreshTarget, ReportedAccount};
use crate::connection::{AccountKind, AccountState, Sealer, State};
use crate::feed::{self, ReportedTransaction};
use crate::incident::{self, Failure, RefreshOutcome};
use crate::institution::{Institution, ProviderKind};
use crate::jobs::fault;
use crate::jobs::worker::{HandlerFuture, JobHandler};
use crate::jobs::{ClaimedJob, Outcome};
use crate::ofx::OfxVersion;
use crate::provider::{self, AccountFeed, DirectConnectSettings, FeedProvider, FetchRequest, Fetched, ProviderError};
use crate::telemetry::{Metrics, RefreshResult, RefreshStage};

/// Everything a refresh needs, shared by all refresh jobs of a pool.
pub struct Refresher<P> {
    pub pool: PgPool,
    pub sealer: Arc<Sealer>,
    pub provider: P,
    pub catalog: CatalogHandle,
    /// Where the sandbox bank's `/ofx/{slug}` paths live (demo mode or a test's server).
    pub sandbox_url: Option<String>,
    pub incidents: incident::Rules,
    /// Refresh outcomes by institution, which the queue's own job metrics cannot label.
    pub metrics: Arc<Metrics>,
    /// How many refreshes of one institution run at once.
    pub bulkheads: super::bulkhead::Bulkheads,
    /// When an account that stopped bringing transactions counts as stalled.
    pub stalls: feed::stall::Rules,
    /// Reads what the pool's refreshes need, several to a statement (`refresh::reader`).
    pub reader: Reader,
    /// Stores the pool's successes, several to a commit (`refresh::writer`).
    pub writer: Writer,
}

impl<P> std::fmt::Debug for Refresher<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Refresher").field("sandbox_url", &self.sandbox_url).finish_non_exhaustive()
    }
}

/// Crash points of a refresh for the kill tests (`jobs::fault`): the bank has answered and
/// nothing is stored; the storing transaction has committed (a success's job completed in it)
/// and the handler has not heard yet. The writer's own points are in `refresh::writer`.
pub const FAULT_EXCHANGED: &str = "refresh.exchanged";
pub const FAULT_STORED: &str = "refresh.stored";

/// The job handler: one shared [`Refresher`].
#[derive(Debug)]
pub struct RefreshHandler<P>(pub Arc<Refresher<P>>);

impl<P: FeedProvider + Send + Sync + 'static> JobHandler for RefreshHandler<P> {
    fn handle(&self, job: ClaimedJob) -> HandlerFuture {
        let refresher = Arc::clone(&self.0);
        Box::pin(async move { refresher.refresh(&job).await.unwrap_or_else(database_failure) })
    }
}

/// The database failed the refresh (a statement, a shared read or a shared commit): retried.
fn database_failure(error: impl std::fmt::Display) -> Outcome {
    Outcome::Retry { error: format!("database: {error}"), after: None, result: None }
}

impl<P: FeedProvider + Send + Sync> Refresher<P> {
    async fn refresh(&self, job: &ClaimedJob) -> Result<Outcome, sqlx::Error> {
        let Some(connection_id) = job.args["connection_id"].as_str().and_then(|id| Uuid::parse_str(id).ok()) else {
            return Ok(Outcome::Fail { error: "args lack a connection_id".into(), result: None });
        };
        let started = Instant::now();
        let read = match self.reader.read(|| self.pool.clone(), connection_id).await {
            Ok(read) => read,
            Err(failed) => return Ok(database_failure(failed)),
        };
        let Some(Read { target, institution }) = read else {
            return Ok(skipped("the connection no longer exists"));
        };
        if target.state == State::Disconnected {
            return Ok(skipped("the connection is disconnected"));
        }
        self.metrics.refresh_stage(RefreshStage::Read, started.elapsed());
        let Some(place) = self.bulkheads.try_enter(target.institution_id) else {
            let reason = "as many refreshes of this institution run as it may have at once".to_owned();
            return Ok(Outcome::Snooze { after: super::bulkhead::wait_when_full(), reason });
        };
        let now = Utc::now();
        let window_start = window_start(target.last_success_at, now);
        let asked = Instant::now();
        let fetched = match self.prepare(&target, institution.as_deref()) {
            Ok((settings, credentials)) => {
                let request = FetchRequest {
                    institution: &settings,
                    credentials: &credentials,
                    since: Some(window_start),
                    now,
                    known_accounts: &target.known_accounts,
                };
                self.provider.fetch_with_references(&request).await
            }
            Err(error) => Err(error),
        };
        self.metrics.refresh_stage(RefreshStage::Bank, asked.elapsed());
        // The bank has answered: the institution's place goes to its next refresh, as the slot
        // does once the writer takes the result (a stalled bank holds places, a commit does not).
        drop(place);
        // Nothing of the answer is stored yet.
        fault::pause_at(FAULT_EXCHANGED).await;
        let storing = Instant::now();
        let stored = match fetched {
            Ok(fetched) => self.store_success(job, target, fetched, window_start, now).await,
            Err(error) => self.store_failure(job, &target, error, now).await,
        };
        self.metrics.refresh_stage(RefreshStage::Store, storing.elapsed());
        stored
    }

    /// The institution's address and the opened credentials, or the failure that stops us.
    fn prepare(
        &self,
        target: &RefreshTarget,
        institution: Option<&Institution>,
    ) -> Result<(DirectConnectSettings, provider::Credentials), ProviderError> {
        let misconfigured = |message: &str| ProviderError {
            code: Code::INSTITUTION_SETTINGS,
            raw: "feedwatch:institution_settings".into(),
            message: message.into(),
            retry_after: None,
        };
        let institution = institution.ok_or_else(|| misconfigured("the institution is gone"))?;
        let url = match institution.provider {
            ProviderKind::Ofx => institution.ofx.url.clone(),
            ProviderKind::Sandbox => self.sandbox_url.as_ref().map(|base| {
                let slug = institution.slug.strip_prefix(SANDBOX_SLUG_PREFIX).unwrap_or(&institution.slug);
                format!("{base}/ofx/{slug}")
            }),
        }
        .ok_or_else(|| misconfigured("no OFX URL is configured for this institution"))?;
        let version = match institution.ofx.version {
            103 => OfxVersion::V103,
            220 => OfxVersion::V220,
            _ => OfxVersion::V102,
        };
        let settings = DirectConnectSettings {
            url,
            org: Some(institution.ofx.org.clone()).filter(|org| !org.is_empty()),
            fid: Some(institution.ofx.fid.clone()).filter(|fid| !fid.is_empty()),
            app_id: institution.ofx.app_id.clone(),
            app_ver: institution.ofx.app_version.clone(),
            version,
        };
        let opened = self.sealer.open(target.id, &target.key_id, &target.sealed).map_err(|error| ProviderError {
            code: Code::UNCLASSIFIED,
            raw: "feedwatch:credentials".into(),
            message: error.to_string(),
            retry_after: None,
        })?;
        let extra: BTreeMap<String, SecretString> =
            opened.extra.into_iter().map(|(name, value)| (name, SecretString::from(value))).collect();
        let credentials =
            provider::Credentials { user_id: opened.user_id, password: SecretString::from(opened.password), extra };
        Ok((settings, credentials))
    }

    /// Hands the bank's answer to the pool's writer (group commit) and waits until it is stored
    /// and the job completed in one commit, or refused by the fence.
    async fn store_success(
        &self,
        job: &ClaimedJob,
        target: RefreshTarget,
        fetched: Fetched,
        window_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<Outcome, sqlx::Error> {
        let trace = crate::telemetry::trace::current();
        let success = Success { job_id: job.job_id, attempt: job.attempt, target, fetched, window_start, now, trace };
        let context = || Context {
            pool: self.pool.clone(),
            incidents: self.incidents.clone(),
            stalls: self.stalls,
            metrics: Arc::clone(&self.metrics),
        };
        Ok(match self.writer.write(context, success, &job.slot).await {
            Written::Stored(result) => Outcome::Completed(result),
            Written::Lost => lost(),
            Written::Failed(error) => database_failure(error),
        })
    }

    async fn store_failure(
        &self,
        job: &ClaimedJob,
        target: &RefreshTarget,
        error: ProviderError,
        now: DateTime<Utc>,
    ) -> Result<Outcome, sqlx::Error> {
        let id = target.id;
        let code = error.code;
        let (party, retryable) = {
            let catalog = self.catalog.current();
            (lifecycle::party_for(&catalog, code), retry::retryable(&catalog, code))
        };
        let mut tx = crate::database::begin(&self.pool).await?;
        if !crate::jobs::store::hold_if_current(&mut tx, job.job_id, job.attempt).await? {
            return Ok(lost());
        }
        let bank_side = party == lifecycle::Party::Bank;
        let outcome = RefreshOutcome {
            institution_id: target.institution_id,
            connection_id: id,
            at: now,
            failure: Some(Failure { code, bank_side }),
        };
        let effect = incident::record(&mut tx, &outcome, &self.incidents).await?;
        if let Some(opened) = effect.open.as_ref().filter(|_| effect.opened) {
            tracing::warn!(institution = %target.institution_id, "incident opened");
            lifecycle::incident_opened(&mut tx, opened).await?;
        }
        // While the bank is in an incident, any failure that retrying helps with is the bank's.
        let incident_until = effect.open.as_ref().map(|open| open.wait_until).filter(|_| retryable);
        let failed = Failed {
            job_id: job.job_id,
            at: now,
            code,
            raw: &error.raw,
            message: &error.message,
            party,
            in_incident: incident_until.is_some(),
        };
        lifecycle::refresh_failed(&mut tx, &subject(target), &failed).await?;
        tx.commit().await?;
        let result = if bank_side { RefreshResult::BankFailure } else { RefreshResult::OtherFailure };
        self.metrics.refresh_stored(target.institution_id, result);
        let result = Some(serde_json::json!({ "code": error.code, "raw": error.raw }));
        let incident_wait = incident_until.map(|until| retry::incident_wait(until, now, self.incidents.retry_every));
        Ok(retry::after_failure(retryable, error.retry_after, incident_wait, error.to_string(), result))
    }
}

fn skipped(reason: &str) -> Outcome {
    Outcome::Succeeded(serde_json::json!({ "skipped": reason }))
}

/// The first account whose statement the bank refused, by its code and raw code.
pub(super) fn refused_account<'a>(
    accounts: &[(&'a AccountFeed, Option<&serde_json::Value>)],
) -> Option<(Code, &'a str)> {
    accounts.iter().filter_map(|(feed, _)| feed.error.as_ref()).find_map(|error| {
        (AccountState::reported(Some(error.code)) == AccountState::Refused).then_some((error.code, error.raw.as_str()))
    })
}

/// Another attempt owns the job now; whatever we return is fenced off.
fn lost() -> Outcome {
    Outcome::Retry { error: "lease lost before the results were stored".into(), after: None, result: None }
}

/// Each account once (the first time the bank names it), with its provider reference: the
/// account upsert must not meet one account twice.
pub(super) fn distinct_accounts(fetched: &Fetched) -> Vec<(&AccountFeed, Option<&serde_json::Value>)> {
    let mut accounts: Vec<(&AccountFeed, Option<&serde_json::Value>)> = Vec::new();
    let references = fetched.references.iter().map(Option::as_ref).chain(std::iter::repeat(None));
    for (feed, reference) in fetched.data.accounts.iter().zip(references) {
        if !accounts.iter().any(|(seen, _)| seen.account.id == feed.account.id) {
            accounts.push((feed, reference));
        }
    }
    accounts
}

pub(super) fn listed_account<'a>(feed: &'a AccountFeed, reference: Option<&'a serde_json::Value>) -> ListedAccount<'a> {
    let account = &feed.account;
    let balance = account.ledger_balance.as_ref();
    let reported = ReportedAccount {
        bank_account_id: &account.id,
        kind: account_kind(account.kind),
        masked_number: &account.masked_number,
        bank_name: &account.name,
        currency: account.currency.as_deref().unwrap_or("USD"),
        balance: balance.map(|b| b.amount),
        available: account.available_balance.as_ref().map(|b| b.amount),
        balance_as_of: balance.map(|b| b.as_of),
        error_code: feed.error.as_ref().map(|error| error.code),
    };
    ListedAccount { reported, provider_ref: reference }
}

/// "Data as of": the newest balance date or posting date the bank reported.
pub(super) fn newest_data(
    listed: &[ListedAccount],
    reported: &[Option<Vec<ReportedTransaction>>],
) -> Option<DateTime<Utc>> {
    let balances = listed.iter().filter_map(|account| account.reported.balance_as_of);
    let postings = reported.iter().flatten().flatten().map(|t| t.posted_at);
    balances.chain(postings).max()
}

fn account_kind(kind: provider::AccountKind) -> AccountKind {
    match kind {
        provider::AccountKind::Checking => AccountKind::Checking,
        provider::AccountKind::Savings => AccountKind::Savings,
        provider::AccountKind::MoneyMarket => AccountKind::MoneyMarket,
        provider::AccountKind::CreditLine => AccountKind::LineOfCredit,
        provider::AccountKind::CreditCard => AccountKind::CreditCard,
        provider::AccountKind::CertificateOfDeposit | provider::AccountKind::Other => AccountKind::Other,
    }
}

/// One row per FITID (the last wins): a bank repeating a transaction must not make the upsert
/// touch a row twice.
pub(super) fn reported_transactions(
    transactions: &[provider::FeedTransaction],
    currency: &str,
) -> Vec<ReportedTransaction> {
    let mut by_fitid: BTreeMap<&str, ReportedTransaction> = BTreeMap::new();
    for t in transactions {
        by_fitid.insert(
            &t.fitid,
            ReportedTransaction {
                fitid: t.fitid.clone(),
                posted_at: t.posted,
                amount: t.amount,
                currency: t.currency.clone().unwrap_or_else(|| currency.to_owned()),
                name: t.name.clone().unwrap_or_default(),
                memo: t.memo.clone().unwrap_or_default(),
                check_number: t.check_number.clone().unwrap_or_default(),
                pending: t.pending,
                replaces_fitid: t.replaces_fitid.clone(),
            },
        );
    }
    by_fitid.into_values().collect()
}

pub(super) fn subject(target: &RefreshTarget) -> Subject {
    Subject { tenant_id: target.tenant_id, institution_id: target.institution_id, connection_id: target.id }
}
