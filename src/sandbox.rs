//! The sandbox bank: an OFX Direct Connect server with magic credentials, deterministic
//! transactions that grow over time, and injected faults. No HTTP here: the logic takes the
//! request body and `now` and says what to answer; `http::sandbox_bank` serves it.
//!
//! Institutions, each at `/ofx/{slug}`:
//! - `healthy`: answers everything as asked.
//! - `flaky`: fails a share of requests ([`SandboxConfig::flaky_rate`]) bank-side, with HTTP 503
//!   or an OFX 2000 on every transaction of the reply.
//! - `maintenance`: answers 503 with Retry-After inside its [`MaintenanceWindow`].
//! - `slow`: answers after [`SandboxConfig::slow_latency`].
//! - `rejecting`: refuses every sign-on (OFX 15500).
//!
//! Credentials are described in [`magic`].

pub mod ledger;
pub mod magic;
pub mod maintenance;

mod dice;
mod reply;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::ofx::{self, OfxVersion, ParseOptions};
use dice::Dice;
use magic::Magic;
pub use maintenance::MaintenanceWindow;

/// How a sandbox institution misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Healthy,
    Flaky,
    Maintenance,
    Slow,
    Rejecting,
}

/// A sandbox institution, with what a client needs to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Institution {
    pub slug: &'static str,
    pub name: &'static str,
    pub org: &'static str,
    pub fid: &'static str,
    /// The OFX version to speak to it; the sandbox answers in whatever version it is asked.
    pub version: OfxVersion,
    /// The routing number in its bank accounts' BANKACCTFROM.
    pub bank_id: &'static str,
    pub behaviour: Behaviour,
}

impl Institution {
    /// Its OFX URL path, relative to where the sandbox router is mounted.
    pub fn path(&self) -> String {
        format!("/ofx/{}", self.slug)
    }
}

const fn institution(
    slug: &'static str,
    name: &'static str,
    fid: &'static str,
    version: OfxVersion,
    behaviour: Behaviour,
) -> Institution {
    Institution { slug, name, org: "FEEDWATCH-SANDBOX", fid, version, bank_id: "999999999", behaviour }
}

/// Every sandbox institution. Versions differ so both OFX dialects get exercised.
pub const INSTITUTIONS: &[Institution] = &[
    institution("healthy", "Sandbox Healthy Bank", "90001", OfxVersion::V102, Behaviour::Healthy),
    institution("flaky", "Sandbox Flaky Credit Union", "90002", OfxVersion::V103, Behaviour::Flaky),
    institution("maintenance", "Sandbox Maintenance Savings", "90003", OfxVersion::V220, Behaviour::Maintenance),
    institution("slow", "Sandbox Slow Trust", "90004", OfxVersion::V220, Behaviour::Slow),
    institution("rejecting", "Sandbox Rejecting Bank", "90005", OfxVersion::V102, Behaviour::Rejecting),
];

/// Dials for latency and faults.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxConfig {
    /// Added to every reply.
    pub latency: Duration,
    /// Added to every reply of the `slow` institution.
    pub slow_latency: Duration,
    /// Share of the `flaky` institution's requests that fail, from 0 (none) to 1 (all).
    pub flaky_rate: f64,
    pub maintenance: MaintenanceWindow,
    /// Seeds transactions, account numbers and the flaky institution's dice.
    pub seed: u64,
    /// A stalled reply (`error_712`) gives up after this long, so nothing waits forever.
    pub stall_limit: Duration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            slow_latency: Duration::from_secs(3),
            flaky_rate: 0.3,
            maintenance: MaintenanceWindow::Always,
            seed: 42,
            stall_limit: Duration::from_secs(600),
        }
    }
}

impl SandboxConfig {
    /// Demo mode inside `serve`: a little latency so refreshes look real, the default faults.
    pub fn demo() -> Self {
        Self { latency: Duration::from_millis(150), slow_latency: Duration::from_secs(2), ..Self::default() }
    }
}

/// Where the sandbox's "now" comes from when serving.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    Manual(ManualClock),
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Self::System => Utc::now(),
            Self::Manual(clock) => clock.now(),
        }
    }
}

/// A clock tests move by hand; clones share the same time.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(Arc::new(AtomicI64::new(at.timestamp_millis())))
    }

    pub fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0.load(Ordering::SeqCst)).unwrap_or_default()
    }

    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_millis(), Ordering::SeqCst);
    }
}

/// What to answer, and how long to wait first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankReply {
    pub delay: Duration,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 200 with an OFX body.
    Ofx(String),
    /// 200 with an OFX body cut off mid-tag.
    Garbled(String),
    /// A bare HTTP status, with a Retry-After when set.
    Http { status: u16, retry_after: Option<Duration> },
    /// No answer until the client gives up, the stall limit passes or the bank closes.
    Stall,
}

/// The sandbox bank. Shared by every request; the only state is two counters: the flaky dice's
/// and how many exchanges were answered.
#[derive(Debug)]
pub struct SandboxBank {
    config: SandboxConfig,
    clock: Clock,
    requests: AtomicU64,
    /// Requests received, counted on arrival (before the reply's delay), watchable so a test can
    /// wait until a client is surely mid-exchange instead of sleeping.
    exchanges: tokio::sync::watch::Sender<u64>,
    closing: CancellationToken,
}

impl SandboxBank {
    pub fn new(config: SandboxConfig, clock: Clock) -> Self {
        Self {
            config,
            clock,
            requests: AtomicU64::new(0),
            exchanges: tokio::sync::watch::Sender::new(0),
            closing: CancellationToken::new(),
        }
    }

    /// Requests received so far: how tests and benchmarks count round trips to the bank.
    pub fn exchanges(&self) -> u64 {
        *self.exchanges.borrow()
    }

    /// Resolves once at least `count` requests have been received.
    pub async fn received(&self, count: u64) {
        let mut exchanges = self.exchanges.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = exchanges.wait_for(|received| *received >= count).await;
    }

    pub fn institutions(&self) -> &'static [Institution] {
        INSTITUTIONS
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Ends every stall and delay at once, so a server shutting down is not held up.
    pub fn close(&self) {
        self.closing.cancel();
    }

    /// Resolves once [`close`](Self::close) was called.
    pub async fn closed(&self) {
        self.closing.cancelled().await;
    }

    /// Answers one POST to `/ofx/{slug}` at `now`.
    pub fn respond(&self, slug: &str, body: &[u8], now: DateTime<Utc>) -> BankReply {
        self.exchanges.send_modify(|received| *received += 1);
        let Some(institution) = INSTITUTIONS.iter().find(|institution| institution.slug == slug) else {
            return BankReply { delay: self.config.latency, outcome: Outcome::Http { status: 404, retry_after: None } };
        };
        let delay = match institution.behaviour {
            Behaviour::Slow => self.config.latency + self.config.slow_latency,
            _ => self.config.latency,
        };
        BankReply { delay, outcome: self.answer(institution, body, now) }
    }

    fn answer(&self, institution: &Institution, body: &[u8], now: DateTime<Utc>) -> Outcome {
        if let Some(outcome) = self.maintenance(institution, now) {
            return outcome;
        }
        let request = match ofx::parse_request(body, &ParseOptions::default()) {
            Ok(request) => request,
            Err(error) => return Outcome::Ofx(reply::unreadable(&error, now)),
        };
        let session = reply::Session::new(&request, institution, self.config.seed, now);
        if institution.behaviour == Behaviour::Flaky
            && let Some(outcome) = self.flaky_failure(&session)
        {
            return outcome;
        }
        let fi_matches = [(&request.signon.org, institution.org), (&request.signon.fid, institution.fid)]
            .iter()
            .all(|(sent, ours)| sent.as_deref().is_none_or(|sent| sent == *ours));
        if !fi_matches {
            return Outcome::Ofx(session.signon_failure(13504));
        }
        if institution.behaviour == Behaviour::Rejecting {
            return Outcome::Ofx(session.signon_failure(15500));
        }
        session_outcome(&session, magic::read(request.signon.password.expose()))
    }

    /// A server down for maintenance answers before reading anything.
    fn maintenance(&self, institution: &Institution, now: DateTime<Utc>) -> Option<Outcome> {
        if institution.behaviour != Behaviour::Maintenance {
            return None;
        }
        let ends_in = self.config.maintenance.check(now)?;
        Some(Outcome::Http { status: 503, retry_after: Some(ends_in.unwrap_or(magic::RETRY_AFTER)) })
    }

    /// Flaky failures come before the bank looks at the credentials, as a failing back end would.
    fn flaky_failure(&self, session: &reply::Session) -> Option<Outcome> {
        let request_number = self.requests.fetch_add(1, Ordering::Relaxed);
        let mut dice = Dice::new(self.config.seed, &["flaky"]).derive(request_number);
        if !dice.chance(self.config.flaky_rate) {
            return None;
        }
        if dice.chance(0.5) {
            return Some(Outcome::Http { status: 503, retry_after: None });
        }
        Some(Outcome::Ofx(session.every_transaction_fails(2000)))
    }
}

fn session_outcome(session: &reply::Session, magic: Magic) -> Outcome {
    match magic {
        Magic::Good => Outcome::Ofx(session.full(None)),
        Magic::StatementStatus(code) => Outcome::Ofx(session.full(Some(code))),
        Magic::SignonStatus(code) => Outcome::Ofx(session.signon_failure(code)),
        Magic::NoAccounts => Outcome::Ofx(session.no_accounts()),
        Magic::EmptyStatements => Outcome::Ofx(session.empty_statements()),
        Magic::Garbled => Outcome::Garbled(reply::garble(&session.full(None))),
        Magic::Stall => Outcome::Stall,
        Magic::Http { status, retry_after } => {
            Outcome::Http { status, retry_after: retry_after.then_some(magic::RETRY_AFTER) }
        }
    }
}

#[cfg(test)]
mod tests;
