//! Delivering one message to one endpoint: a job of the queue. Each attempt is signed afresh
//! (the timestamp is the attempt's), never follows a redirect, ends within the timeout, reads
//! at most [`MAX_RESPONSE_BYTES`] of the answer, and is logged.
//!
//! 2xx delivers; 410 Gone disables the endpoint; anything else (3xx, 4xx, 5xx, a timeout, a
//! refused connection) retries on the Standard Webhooks schedule until the attempts are spent,
//! not before a 429's or 503's `Retry-After` (at most the schedule's longest delay).
//! A host the policy no longer admits fails at once: retrying would not change the answer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use reqwest::redirect::Policy;
use secrecy::SecretString;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::address::{GuardedResolver, parse_url};
use super::{Settings, message_header_id, secret, store};
use crate::jobs::backoff::Backoff;
use crate::jobs::worker::{HandlerFuture, JobHandler};
use crate::jobs::{self, ClaimedJob, Enqueued, NewJob, Outcome};
use crate::provider::direct_connect::retry_after;
use crate::seal::{SealError, Sealer};
use crate::telemetry::{Metrics, trace};

pub const KIND: &str = "webhook.deliver";
/// The first attempt and one retry after each delay of [`SCHEDULE`].
pub const MAX_ATTEMPTS: i32 = SCHEDULE.len() as i32 + 1;
/// Delays before the retries, as the Standard Webhooks specification suggests: 5 s, 5 min,
/// 30 min, 2 h, 5 h, 10 h, 10 h; about a day in all.
pub const SCHEDULE: [Duration; 7] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * 60),
    Duration::from_secs(30 * 60),
    Duration::from_secs(2 * 3600),
    Duration::from_secs(5 * 3600),
    Duration::from_secs(10 * 3600),
    Duration::from_secs(10 * 3600),
];
/// At most this share of a delay is added at random, so endpoints that failed together (a
/// receiver's outage) are not all retried in the same second.
pub const JITTER: f64 = 0.2;
/// For failures the handler does not time itself (a database error, the pool's own timeout).
pub const BACKOFF: Backoff = Backoff { base: Duration::from_secs(5), cap: Duration::from_secs(10 * 3600) };
/// Read this much of a response at most; the rest is never buffered.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// Deliveries go after manual refreshes (10) but before scheduled ones (0): a receiver waits
/// on them, and they are short.
const PRIORITY: i16 = 5;
/// The log column holds 1000 characters; this leaves room for the ellipsis.
const MAX_ERROR_CHARS: usize = 990;

/// The delay before the retry that follows `attempt` (1-based); `unit` in [0, 1) picks the jitter.
pub fn retry_delay(attempt: i32, unit: f64) -> Duration {
    let index = usize::try_from(attempt.max(1) - 1).unwrap_or(0).min(SCHEDULE.len() - 1);
    SCHEDULE[index].mul_f64(1.0 + JITTER * unit.clamp(0.0, 1.0))
}

/// Enqueues one delivery in the caller's transaction.
pub async fn enqueue(conn: &mut PgConnection, endpoint_id: Uuid, message_id: Uuid) -> Result<Enqueued, sqlx::Error> {
    let job = NewJob {
        kind: KIND,
        args: serde_json::json!({ "endpoint_id": endpoint_id, "message_id": message_id }),
        unique_key: None,
        priority: PRIORITY,
        run_at: None,
        max_attempts: MAX_ATTEMPTS,
        connection_id: None,
        trigger: "event",
    };
    jobs::enqueue(conn, &job).await
}

/// Everything deliveries share: one HTTP client (its connection pool) for all of them.
pub struct Deliverer {
    pool: PgPool,
    sealer: Arc<Sealer>,
    client: reqwest::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").field("settings", &self.settings).finish_non_exhaustive()
    }
}

impl Deliverer {
    pub fn new(
        pool: PgPool,
        sealer: Arc<Sealer>,
        settings: Settings,
        metrics: Arc<Metrics>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(Policy::none())
            // A proxy would resolve names itself and bypass the address check.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver(settings.hosts.clone())))
            .user_agent(format!("feedwatch-webhooks/{}", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { pool, sealer, client, settings, metrics })
    }
}

/// The job handler: one shared [`Deliverer`].
#[derive(Debug)]
pub struct DeliveryHandler(pub Arc<Deliverer>);

impl JobHandler for DeliveryHandler {
    fn handle(&self, job: ClaimedJob) -> HandlerFuture {
        let deliverer = Arc::clone(&self.0);
        Box::pin(async move {
            deliverer.deliver(&job).await.unwrap_or_else(|error| Outcome::Retry {
                error: format!("database: {error}"),
                after: None,
                result: None,
            })
        })
    }
}

/// How one attempt ended, before deciding what follows.
#[derive(Debug)]
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
    /// The host is not admitted: no retry can succeed.
    refused: bool,
    /// The receiver's `Retry-After` on a 429 or 503: no retry before it.
    retry_after: Option<Duration>,
}

impl Attempt {
    fn failed(error: String) -> Self {
        Self { status: None, error: Some(error), refused: false, retry_after: None }
    }

    fn refused(error: String) -> Self {
        Self { status: None, error: Some(error), refused: true, retry_after: None }
    }
}

impl Deliverer {
    async fn deliver(&self, job: &ClaimedJob) -> Result<Outcome, sqlx::Error> {
        let id = |name: &str| job.args[name].as_str().and_then(|text| Uuid::parse_str(text).ok());
        let (Some(endpoint_id), Some(message_id)) = (id("endpoint_id"), id("message_id")) else {
            return Ok(Outcome::Fail { error: "args lack an endpoint_id or message_id".into(), result: None });
        };
        let Some(target) = store::delivery_target(&self.pool, endpoint_id, message_id).await? else {
            return Ok(skipped("the endpoint or the message no longer exists"));
        };
        if !target.enabled {
            return Ok(skipped("the endpoint is disabled"));
        }
        let started = Instant::now();
        let attempt = match self.secrets(endpoint_id, &target) {
            Ok(secrets) => self.send(&target, message_id, &secrets).await,
            Err(error) => Attempt::refused(format!("the signing secret cannot be opened: {error}")),
        };
        let duration_ms = i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX);
        let verdict = Verdict::of(&attempt, job.attempt, job.max_attempts);
        let next_attempt_at = match verdict {
            Verdict::Retry(delay) => chrono::TimeDelta::from_std(delay).ok().map(|delay| Utc::now() + delay),
            _ => None,
        };
        let error = attempt.error.as_deref().map(|text| truncate(text, MAX_ERROR_CHARS));
        let log = store::NewDelivery {
            endpoint_id,
            message_id,
            event_type: &target.event_type,
            attempt: job.attempt,
            outcome: verdict.logged_as(),
            status_code: attempt.status.map(i32::from),
            error: error.as_deref(),
            duration_ms,
            next_attempt_at,
        };
        let mut tx = crate::database::begin(&self.pool).await?;
        store::insert_delivery(&mut *tx, &log).await?;
        if verdict == Verdict::Gone {
            store::disable(&mut *tx, endpoint_id, "the receiver answered 410 Gone").await?;
            tracing::info!(endpoint = %endpoint_id, "webhook endpoint disabled: 410 Gone");
        }
        tx.commit().await?;
        self.metrics.delivery_attempted(endpoint_id, verdict.logged_as());
        Ok(verdict.outcome(&attempt))
    }

    /// The secrets to sign with, the current one first, then the one a rotation replaced while
    /// its grace period lasts (the store leaves an expired one out).
    fn secrets(&self, endpoint_id: Uuid, target: &store::DeliveryTarget) -> Result<Vec<SecretString>, SealError> {
        let mut secrets = vec![secret::open(&self.sealer, endpoint_id, &target.secret_key_id, &target.secret_sealed)?];
        if let (Some(blob), Some(key_id)) = (&target.previous_secret_sealed, &target.previous_secret_key_id) {
            // The old secret only eases the switch: losing it must not stop deliveries signed
            // with the current one.
            match secret::open(&self.sealer, endpoint_id, key_id, blob) {
                Ok(previous) => secrets.push(previous),
                Err(error) => {
                    tracing::warn!(endpoint = %endpoint_id, %error, "the previous signing secret cannot be opened; signing with the current one only");
                }
            }
        }
        Ok(secrets)
    }

    /// One signed POST; never an error, only an [`Attempt`] that says how it went.
    async fn send(&self, target: &store::DeliveryTarget, message_id: Uuid, secrets: &[SecretString]) -> Attempt {
        let url = match parse_url(&target.url) {
            Ok(url) => url,
            Err(refused) => return Attempt::refused(format!("the URL {refused}")),
        };
        if let Err(refused) = self.settings.hosts.check_host(&url) {
            return Attempt::refused(format!("not sent: {refused}"));
        }
        let Some(keys) = secrets.iter().map(secret::key).collect::<Option<Vec<_>>>() else {
            return Attempt::refused("the signing secret is malformed".into());
        };
        let webhook_id = message_header_id(message_id);
        let timestamp = Utc::now().timestamp();
        // Standard Webhooks: several signatures are space-separated; a receiver accepts the
        // message if any one verifies, so it may switch secrets at any point of the grace period.
        let signatures: Vec<String> =
            keys.iter().map(|key| secret::sign(key, &webhook_id, timestamp, &target.body)).collect();
        let signature = signatures.join(" ");
        let mut request = self
            .client
            .post(url)
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header(CONTENT_TYPE, "application/json");
        // The receiver can tie the event to the request (and refresh) that caused it.
        if let Some(traceparent) = trace::outbound_header() {
            request = request.header(trace::HEADER, traceparent);
        }
        let request = request.body(target.body.clone());
        match request.send().await {
            Ok(response) => self.answered(response).await,
            Err(error) => Attempt::failed(self.describe(&error)),
        }
    }

    /// Reads (at most the cap of) the answer so the connection can be reused, and judges it.
    async fn answered(&self, mut response: reqwest::Response) -> Attempt {
        let status = response.status();
        let location = response.headers().get(LOCATION).and_then(|value| value.to_str().ok()).map(str::to_owned);
        // Only a receiver that is overloaded or rate-limiting says when to come back.
        let retry_after = match status.as_u16() {
            429 | 503 => retry_after(response.headers(), Utc::now()),
            _ => None,
        };
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => read += chunk.len(),
                // A slow or broken body after the status line does not change the verdict.
                Ok(None) | Err(_) => break,
            }
        }
        let error = if status.is_success() {
            None
        } else if status.is_redirection() {
            let to = location.map_or_else(String::new, |location| format!(" to {}", truncate(&location, 300)));
            Some(format!("HTTP {status}: redirect{to} not followed"))
        } else {
            Some(format!("HTTP {status}"))
        };
        Attempt { status: Some(status.as_u16()), error, refused: false, retry_after }
    }

    /// An error's whole chain, without the URL (it may carry the receiver's token).
    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("timed out after {:?}", self.settings.timeout);
        }
        let mut text = String::from(if error.is_connect() { "could not connect" } else { "request failed" });
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Verdict {
    Delivered,
    /// 410: the receiver wants no more; the endpoint is disabled.
    Gone,
    Retry(Duration),
    /// No attempt left, or none could succeed.
    Failed,
}

impl Verdict {
    fn of(attempt: &Attempt, number: i32, max_attempts: i32) -> Self {
        match attempt.status {
            Some(status) if (200..300).contains(&status) => Self::Delivered,
            Some(410) => Self::Gone,
            _ if attempt.refused || number >= max_attempts => Self::Failed,
            _ => Self::Retry(next_delay(retry_delay(number, rand::random()), attempt.retry_after)),
        }
    }

    fn logged_as(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry(_) => "retrying",
            Self::Gone | Self::Failed => "failed",
        }
    }

    fn outcome(self, attempt: &Attempt) -> Outcome {
        let result = Some(serde_json::json!({ "status": attempt.status }));
        let error = attempt.error.clone().unwrap_or_default();
        match self {
            Self::Delivered => Outcome::Succeeded(serde_json::json!({ "status": attempt.status })),
            Self::Gone => Outcome::Fail { error: "410 Gone: the endpoint was disabled".into(), result },
            // The queue fails the job itself once its attempts are spent.
            Self::Retry(delay) => Outcome::Retry { error, after: Some(delay), result },
            Self::Failed => Outcome::Fail { error, result },
        }
    }
}

/// The scheduled delay, or the receiver's `Retry-After` when that is later, but never more
/// than the longest delay of the schedule: a receiver cannot park a delivery for days.
fn next_delay(scheduled: Duration, retry_after: Option<Duration>) -> Duration {
    let longest = SCHEDULE[SCHEDULE.len() - 1];
    retry_after.map_or(scheduled, |asked| scheduled.max(asked.min(longest)))
}

fn skipped(reason: &str) -> Outcome {
    Outcome::Succeeded(serde_json::json!({ "skipped": reason }))
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_standard_webhooks_schedule_with_bounded_jitter() {
        assert_eq!(MAX_ATTEMPTS, 8);
        assert_eq!(retry_delay(1, 0.0), Duration::from_secs(5));
        assert_eq!(retry_delay(2, 0.0), Duration::from_secs(300));
        assert_eq!(retry_delay(7, 0.0), Duration::from_secs(36_000));
        assert_eq!(retry_delay(99, 0.0), Duration::from_secs(36_000), "past the schedule: its last delay");
        assert_eq!(retry_delay(0, 0.0), Duration::from_secs(5), "attempt 0 is treated as the first");
        for attempt in 1..=7 {
            let nominal = SCHEDULE[attempt as usize - 1];
            let most = retry_delay(attempt, 1.0);
            assert_eq!(most, nominal.mul_f64(1.0 + JITTER));
            let middle = retry_delay(attempt, 0.5);
            assert!(middle > nominal && middle < most);
        }
    }

    #[test]
    fn verdicts_follow_the_status() {
        let answered = |status| Attempt { status: Some(status), error: None, refused: false, retry_after: None };
        assert_eq!(Verdict::of(&answered(204), 1, 8), Verdict::Delivered);
        assert_eq!(Verdict::of(&answered(410), 1, 8), Verdict::Gone);
        assert!(matches!(Verdict::of(&answered(500), 1, 8), Verdict::Retry(_)));
        assert!(matches!(Verdict::of(&answered(302), 1, 8), Verdict::Retry(_)));
        assert!(matches!(Verdict::of(&answered(404), 7, 8), Verdict::Retry(_)));
        assert_eq!(Verdict::of(&answered(500), 8, 8), Verdict::Failed);
        assert_eq!(Verdict::of(&Attempt::refused("no".into()), 1, 8), Verdict::Failed);
        assert!(matches!(Verdict::of(&Attempt::failed("timeout".into()), 1, 8), Verdict::Retry(_)));
    }

    #[test]
    fn retry_after_postpones_a_retry_up_to_the_longest_delay() {
        let (scheduled, hour) = (Duration::from_secs(5), Duration::from_secs(3600));
        assert_eq!(next_delay(scheduled, None), scheduled);
        assert_eq!(next_delay(scheduled, Some(Duration::from_secs(120))), Duration::from_secs(120));
        assert_eq!(next_delay(hour, Some(Duration::from_secs(120))), hour, "never sooner than the schedule");
        assert_eq!(next_delay(scheduled, Some(100 * hour)), 10 * hour, "capped at the schedule's longest");
        let busy =
            Attempt { status: Some(503), error: None, refused: false, retry_after: Some(Duration::from_secs(600)) };
        assert_eq!(Verdict::of(&busy, 1, 8), Verdict::Retry(Duration::from_secs(600)));
        assert_eq!(Verdict::of(&busy, 8, 8), Verdict::Failed, "no attempt left, whatever the receiver asks");
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("ok", 10), "ok");
    }
}
