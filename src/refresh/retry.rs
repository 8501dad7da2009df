//! When a failed refresh is tried again: the one owner of the refresh retry rule. The catalogue
//! entry of the failure's code says whether retrying can help (read from the live index, so an
//! admin's edit counts at once); the bank's `Retry-After` says when; an open incident slows
//! retries down to its pace; otherwise the refresh backoff decides.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::catalog::{CatalogIndex, Code};
use crate::jobs::Outcome;
use crate::jobs::backoff::Backoff;

/// How a failed refresh is retried when neither the bank nor an incident says when: 15 s
/// doubling to 15 min; with 8 attempts about half an hour of retrying (the design notes' 5 s
/// base gives only ten minutes).
pub const BACKOFF: Backoff = Backoff { base: Duration::from_secs(15), cap: Duration::from_secs(15 * 60) };

/// Whether the catalogue says a plain retry can help with `code`. A code the catalogue does not
/// know is treated as unclassified.
pub fn retryable(catalog: &CatalogIndex, code: Code) -> bool {
    let entry = catalog.entry(code).or_else(|| catalog.entry(Code::UNCLASSIFIED));
    entry.is_some_and(|stored| stored.entry.retryable)
}

/// When to try again, before any incident is considered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The bank said when (Retry-After): snooze until then, spending no attempt.
    After(Duration),
    /// Retrying later may help; the backoff policy decides when.
    Later,
    /// Retrying alone will not help: the user, the bank or support must act first.
    GiveUp,
}

/// The plan for a failure the catalogue calls `retryable` (or not), with the bank's
/// `Retry-After`: the delay only shapes retries the catalogue allows.
pub fn plan(retryable: bool, retry_after: Option<Duration>) -> Plan {
    match (retryable, retry_after) {
        (false, _) => Plan::GiveUp,
        (true, Some(after)) => Plan::After(after),
        (true, None) => Plan::Later,
    }
}

/// How long a refresh waits out its institution's incident: until the incident's `wait_until`,
/// and never less than `retry_every`.
pub fn incident_wait(until: DateTime<Utc>, now: DateTime<Utc>, retry_every: Duration) -> Duration {
    (until - now).to_std().unwrap_or_default().max(retry_every)
}

/// What the queue does with a failed refresh. `incident_wait`: the institution is in an incident
/// and the failure is one retrying helps with. Snoozes spend no attempt, so a long incident or
/// maintenance window does not exhaust the job.
pub fn after_failure(
    retryable: bool,
    retry_after: Option<Duration>,
    incident_wait: Option<Duration>,
    message: String,
    result: Option<serde_json::Value>,
) -> Outcome {
    if let Some(after) = incident_wait.filter(|_| retryable) {
        // Slower retries instead of hammering a bank that is down (and not before a declared
        // incident's time).
        return Outcome::Snooze { after, reason: format!("{message}; the institution is in an incident") };
    }
    match plan(retryable, retry_after) {
        Plan::GiveUp => Outcome::Fail { error: message, result },
        Plan::After(after) => Outcome::Snooze { after, reason: message },
        Plan::Later => Outcome::Retry { error: message, after: None, result },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::catalog::CatalogIndex;
    use crate::provider::classify::Classifier;

    fn decide(error: &crate::provider::ProviderError, incident: Option<Duration>) -> Outcome {
        let retryable = retryable(&shipped(), error.code);
        after_failure(retryable, error.retry_after, incident, "failed".into(), None)
    }

    fn shipped() -> CatalogIndex {
        crate::catalog::shipped_index().unwrap()
    }

    #[test]
    fn retry_after_only_shapes_retryable_codes() {
        let catalog = shipped();
        let classify = Classifier::new(&catalog);
        let maintenance = classify.http_status(503, Some(Duration::from_secs(90)));
        assert_eq!(
            decide(&maintenance, None),
            Outcome::Snooze { after: Duration::from_secs(90), reason: "failed".into() }
        );
        assert!(matches!(decide(&classify.http_status(429, None), None), Outcome::Retry { after: None, .. }));
        let not_found = classify.http_status(404, Some(Duration::from_secs(5)));
        assert!(matches!(decide(&not_found, None), Outcome::Fail { .. }));
    }

    #[test]
    fn an_incident_slows_retryable_failures_and_leaves_the_others_alone() {
        let catalog = shipped();
        let classify = Classifier::new(&catalog);
        let wait = Some(Duration::from_secs(600));
        let down = decide(&classify.http_status(503, None), wait);
        assert!(matches!(down, Outcome::Snooze { after, .. } if after == Duration::from_secs(600)));
        assert!(matches!(decide(&classify.ofx_status(15500, None), wait), Outcome::Fail { .. }));
    }

    #[test]
    fn codes_the_catalogue_does_not_know_retry_as_unclassified() {
        let catalog = shipped();
        assert_eq!(retryable(&catalog, Code::new(9_999)), retryable(&catalog, Code::UNCLASSIFIED));
        assert!(retryable(&catalog, Code::new(102)) && !retryable(&catalog, Code::new(103)));
    }

    #[test]
    fn eight_attempts_retry_for_about_half_an_hour() {
        let total: Duration = (1..8).map(|attempt| BACKOFF.delay(attempt, 1.0)).sum();
        assert!(total >= Duration::from_secs(20 * 60) && total <= Duration::from_secs(40 * 60), "{total:?}");
    }

    #[test]
    fn an_incident_waits_at_least_its_retry_pace() {
        let now = Utc::now();
        let every = Duration::from_secs(300);
        assert_eq!(incident_wait(now - chrono::TimeDelta::minutes(1), now, every), every);
        assert_eq!(incident_wait(now + chrono::TimeDelta::hours(1), now, every), Duration::from_secs(3600));
    }
}
