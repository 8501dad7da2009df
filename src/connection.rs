//! Connections (a tenant's link to one institution) and their accounts and timeline.

pub mod diagnosis;
pub mod lifecycle;
pub mod store;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::catalog::Code;

// Sealing is a leaf (webhook secrets use it too); connections re-export it for their callers.
pub use crate::seal::{Credentials, SealError, Sealer};

/// Health state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// The last refresh succeeded recently.
    Healthy,
    /// A refresh is pending or running and nothing is known to be wrong.
    Syncing,
    /// Failing or stale, with nothing for the user to do yet.
    Degraded,
    /// Only the user can fix it (sign-in, MFA, remap).
    NeedsUserAction,
    /// The bank is failing, often for many connections at once.
    BankIssue,
    /// The provider or our settings for the bank are failing.
    ProviderIssue,
    /// Disconnected by the user; data kept, refreshes stopped.
    Disconnected,
}

impl State {
    pub const ALL: [State; 7] = [
        State::Healthy,
        State::Syncing,
        State::Degraded,
        State::NeedsUserAction,
        State::BankIssue,
        State::ProviderIssue,
        State::Disconnected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Healthy => "healthy",
            State::Syncing => "syncing",
            State::Degraded => "degraded",
            State::NeedsUserAction => "needs_user_action",
            State::BankIssue => "bank_issue",
            State::ProviderIssue => "provider_issue",
            State::Disconnected => "disconnected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

/// A connection as stored, without its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub institution_id: Uuid,
    pub institution_name: String,
    pub display_name: String,
    pub state: State,
    pub paused: bool,
    pub refresh_every_seconds: i32,
    pub credentials_updated_at: DateTime<Utc>,
    pub last_attempt_at: Option<DateTime<Utc>>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub data_as_of: Option<DateTime<Utc>>,
    pub failure_streak: i32,
    pub error_code: Option<Code>,
    pub error_raw: Option<String>,
    pub error_at: Option<DateTime<Utc>>,
    pub next_refresh_at: Option<DateTime<Utc>>,
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
    /// When the pending refresh runs, if one is queued.
    pub retry_at: Option<DateTime<Utc>>,
    /// The institution's open incident.
    pub incident: Option<OpenIncident>,
}

impl Connection {
    /// When the scheduler will next refresh it on its own: never while it is paused, waiting for
    /// the user or disconnected, whatever its stored `next_refresh_at` still says.
    pub fn next_scheduled_refresh(&self) -> Option<DateTime<Utc>> {
        self.next_refresh_at.filter(|_| !self.paused && lifecycle::transition::scheduled(self.state))
    }
}

/// What a connection shows of its institution's open incident.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    pub id: Uuid,
    pub title: String,
    pub wait_until: DateTime<Utc>,
}

/// The kinds of account a bank reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Checking,
    Savings,
    CreditCard,
    MoneyMarket,
    LineOfCredit,
    Other,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Checking => "checking",
            Self::Savings => "savings",
            Self::CreditCard => "credit_card",
            Self::MoneyMarket => "money_market",
            Self::LineOfCredit => "line_of_credit",
            Self::Other => "other",
        }
    }

    pub const ALL: [AccountKind; 6] =
        [Self::Checking, Self::Savings, Self::CreditCard, Self::MoneyMarket, Self::LineOfCredit, Self::Other];

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// An account's own state: one closed account must not mark the whole connection broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    Active,
    Closed,
    /// The bank no longer lists it (QuickBooks 324): remap it to the bank's new account id.
    NotFound,
    /// Hidden by the user; still refreshed, not shown in the books.
    Hidden,
    /// The bank refuses this account's statements while the connection's other accounts
    /// refresh (709: not enabled for online access); `error_code` says why.
    Refused,
}

impl AccountState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Closed => "closed",
            Self::NotFound => "not_found",
            Self::Hidden => "hidden",
            Self::Refused => "refused",
        }
    }

    pub const ALL: [AccountState; 5] = [Self::Active, Self::Closed, Self::NotFound, Self::Hidden, Self::Refused];

    /// The state a refresh leaves an account in, by the error the bank reported for it: gone
    /// (324) and closed (708) are facts about the account; any other error is a refusal.
    pub fn reported(error: Option<Code>) -> Self {
        match error {
            None => Self::Active,
            Some(Code::ACCOUNT_NOT_FOUND) => Self::NotFound,
            Some(Code::ACCOUNT_CLOSED) => Self::Closed,
            Some(_) => Self::Refused,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|state| state.as_str() == text)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = AccountView)]
pub struct Account {
    pub id: Uuid,
    pub connection_id: Uuid,
    /// The bank's id for the account; a remap changes it and keeps the history.
    pub bank_account_id: String,
    pub kind: AccountKind,
    pub masked_number: String,
    /// The account's name at the bank.
    pub bank_name: String,
    /// The account's name in the books.
    pub display_name: String,
    pub state: AccountState,
    pub currency: String,
    #[schema(value_type = Option<String>, example = "1523.40")]
    pub balance: Option<Decimal>,
    #[schema(value_type = Option<String>, example = "1500.00")]
    pub available: Option<Decimal>,
    pub balance_as_of: Option<DateTime<Utc>>,
    #[schema(value_type = Option<i32>)]
    pub error_code: Option<Code>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who caused a timeline event (not to be confused with the catalogue's `Actor`, who must act).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangedBy {
    pub key_id: Option<Uuid>,
    pub role: &'static str,
}

impl ChangedBy {
    /// Refreshes and maintenance: no key, role `system`.
    pub const SYSTEM: ChangedBy = ChangedBy { key_id: None, role: "system" };
}

// One entry of a connection's timeline (a plain comment: a doc comment would become the
// schema's description). The API lists it under its connection, so leaves that out.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[schema(as = EventView)]
pub struct Event {
    pub id: Uuid,
    #[serde(skip)]
    pub connection_id: Uuid,
    /// `connection.created`, `connection.renamed`, `connection.credentials_updated`,
    /// `connection.paused`, `connection.disconnected`, `connection.state_changed`, `account.remapped`, ...
    #[schema(example = "connection.renamed")]
    pub kind: String,
    pub detail: serde_json::Value,
    /// The API key that made the change; absent for the system's own events.
    pub actor_key_id: Option<Uuid>,
    #[schema(example = "tenant")]
    pub actor_role: Option<String>,
    pub occurred_at: DateTime<Utc>,
}

/// Which connections a list returns.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub tenant_id: Option<Uuid>,
    pub state: Option<State>,
    pub institution_id: Option<Uuid>,
    pub error_code: Option<Code>,
    /// Connections with no success since this instant (created before it, too).
    pub stale_before: Option<DateTime<Utc>>,
    /// Text in the display name or the institution's name.
    pub q: Option<String>,
}

/// A refresh interval as people read it: `1d`, `6h`, `30m`.
/// Deletes a connection and everything of it, after any refresh or import writing it has
/// committed: its jobs' row locks first, then its feed lock, the order a refresh's fence takes
/// them. Deleting alone waited on a running refresh's job row while that refresh waited on the
/// connection row, and PostgreSQL broke the deadlock by failing one of them (seen in the soak).
pub async fn purge(pool: &sqlx::PgPool, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = crate::database::begin(pool).await?;
    crate::jobs::store::lock_jobs_of_connection(&mut tx, id).await?;
    crate::feed::store::lock_connection(&mut *tx, id).await?;
    let purged = store::purge(&mut *tx, id).await?;
    tx.commit().await?;
    Ok(purged)
}

pub fn every_text(seconds: i32) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s => format!("{}m", s / 60),
    }
}

/// Checks a display name: what people see in lists.
pub fn valid_name(text: &str) -> bool {
    !text.trim().is_empty() && text.chars().count() <= 200 && !text.chars().any(char::is_control)
}

/// The longest credential text (user id, password, an extra field's value), in characters.
pub const MAX_CREDENTIAL_CHARS: usize = 200;
/// The most extra sign-in fields a connection's credentials carry.
pub const MAX_EXTRA_FIELDS: usize = 10;
/// The longest name of an extra sign-in field, in characters.
pub const MAX_EXTRA_NAME_CHARS: usize = 50;

/// Checks credentials as entered; returns `(field, message)` pairs under `credentials.`.
pub fn validate_credentials(credentials: &Credentials) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let text_ok = |text: &str| {
        !text.is_empty() && text.chars().count() <= MAX_CREDENTIAL_CHARS && !text.chars().any(char::is_control)
    };
    if !text_ok(&credentials.user_id) || credentials.user_id.trim().is_empty() {
        problems.push(("credentials.user_id".into(), "must be 1 to 200 characters".into()));
    }
    if !text_ok(&credentials.password) {
        problems.push(("credentials.password".into(), "must be 1 to 200 characters".into()));
    }
    if credentials.extra.len() > MAX_EXTRA_FIELDS {
        problems.push(("credentials.extra".into(), "at most 10 extra fields".into()));
    }
    for (name, value) in &credentials.extra {
        if name.is_empty() || name.chars().count() > MAX_EXTRA_NAME_CHARS || !text_ok(value) {
            problems
                .push((format!("credentials.extra.{name}"), "names of 1 to 50, values of 1 to 200 characters".into()));
        }
    }
    problems
}
