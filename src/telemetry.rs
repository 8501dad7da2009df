//! Logging and metrics. The metrics registry is a value owned by the app, not a global, so two
//! instances in one process (as in tests) never mix their numbers.

pub mod trace;

use std::io::IsTerminal;
use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the process-wide tracing subscriber; `RUST_LOG` overrides the default filter.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=info"));
    let ansi = colours_wanted(std::io::stderr().is_terminal(), std::env::var_os("NO_COLOR").as_deref());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi);
    // A second call (a test harness that already installed one) is harmless, so the error is ignored.
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}

/// Colour codes only for a person at a terminal: logs piped to a file or a log shipper are plain
/// text (tracing-subscriber colours them wherever they go unless told), and `NO_COLOR` set to
/// anything but the empty string turns them off everywhere (no-color.org).
fn colours_wanted(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(std::ffi::OsStr::is_empty)
}

/// Labels of one HTTP request observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    /// The route template (`/v1/errors/{code}`), never the raw path, so cardinality stays bounded.
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    pub kind: String,
    /// succeeded, retry, failed, snoozed
    pub outcome: String,
    /// The catalogue code of a refresh failure, or "none".
    pub code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// read, bank, store
    pub stage: String,
}

/// The parts of one refresh, timed apart so that a slow refresh says whose time it spent: our
/// database's before the bank is asked, the bank's (the provider call, parsing included), or
/// our database's again until the outcome is committed (the writer's wait for a shared commit
/// included).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshStage {
    Read,
    Bank,
    Store,
}

impl RefreshStage {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Bank => "bank",
            Self::Store => "store",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefreshLabels {
    pub institution_id: String,
    /// succeeded, bank_failure, other_failure
    pub outcome: String,
}

/// How a stored refresh ended, as far as a bank's health is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshResult {
    Succeeded,
    /// The catalogue says the bank must act: what incidents are made of.
    BankFailure,
    /// The user's or ours (credentials, configuration, unclassified).
    OtherFailure,
}

impl RefreshResult {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::BankFailure => "bank_failure",
            Self::OtherFailure => "other_failure",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InstitutionLabels {
    pub institution_id: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    pub endpoint_id: String,
    /// delivered, retrying, failed
    pub outcome: String,
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<RequestLabels, Counter>,
    pub http_request_duration: Family<RequestLabels, Histogram>,
    pub db_pool_connections: Gauge,
    pub db_pool_idle: Gauge,
    pub db_pool_max: Gauge,
    pub ready: Gauge,
    pub refresh_outcomes: Family<RefreshLabels, Counter>,
    pub webhook_deliveries: Family<DeliveryLabels, Counter>,
    pub institution_incident_open: Family<InstitutionLabels, Gauge>,
    pub institution_incident_expected_end: Family<InstitutionLabels, Gauge>,
    pub job_outcomes: Family<JobLabels, Counter>,
    pub job_duration: Family<KindLabels, Histogram>,
    pub refresh_stage_duration: Family<StageLabels, Histogram>,
    pub jobs_claimed: Counter,
    pub worker_slots_busy: Gauge,
    pub jobs_rescued: Counter,
    pub queue_depth: Family<StateLabels, Gauge>,
    pub queue_oldest_due_seconds: Gauge<f64, std::sync::atomic::AtomicU64>,
    pub connections: Family<StateLabels, Gauge>,
    pub connections_stale: Gauge,
    pub incidents_open: Gauge,
    pub workers_live: Gauge,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("feedwatch");
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route template and status",
            http_requests.clone(),
        );
        let http_request_duration = Family::<RequestLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request",
            http_request_duration.clone(),
        );
        let db_pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open connections in the API's database pool",
            db_pool_connections.clone(),
        );
        let db_pool_idle = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Idle connections in the API's database pool",
            db_pool_idle.clone(),
        );
        let db_pool_max = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "Most connections the API's database pool may open (FEEDWATCH_DB_MAX_CONNECTIONS)",
            db_pool_max.clone(),
        );
        let ready = Gauge::default();
        registry.register(
            "ready",
            "1 when /readyz would answer 200 (database reachable, migrations applied), else 0 (read at scrape)",
            ready.clone(),
        );
        let refresh_outcomes = Family::<RefreshLabels, Counter>::default();
        registry.register(
            "refresh_outcomes",
            "Refreshes stored, by institution and outcome (succeeded, bank_failure, other_failure)",
            refresh_outcomes.clone(),
        );
        let webhook_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts, by endpoint and outcome (delivered, retrying, failed)",
            webhook_deliveries.clone(),
        );
        let institution_incident_open = Family::<InstitutionLabels, Gauge>::default();
        registry.register(
            "institution_incident_open",
            "1 for each institution with an open incident (read at scrape)",
            institution_incident_open.clone(),
        );
        let institution_incident_expected_end = Family::<InstitutionLabels, Gauge>::default();
        registry.register(
            "institution_incident_expected_end_timestamp_seconds",
            "When an institution's open incident is expected to end: its wait_until, Unix seconds (read at scrape)",
            institution_incident_expected_end.clone(),
        );
        let job_outcomes = Family::<JobLabels, Counter>::default();
        registry.register("job_outcomes", "Jobs finished, by kind, outcome and catalogue code", job_outcomes.clone());
        let job_duration = Family::<KindLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register("job_duration_seconds", "Time one job (a refresh) took", job_duration.clone());
        let refresh_stage_duration = Family::<StageLabels, Histogram>::new_with_constructor(latency_histogram);
        registry.register(
            "refresh_stage_duration_seconds",
            "Time each stage of a refresh took: read (the connection and its bank's settings), bank (the \
             provider's answer, parsed), store (until the outcome is committed)",
            refresh_stage_duration.clone(),
        );
        let jobs_claimed = Counter::default();
        registry.register("jobs_claimed", "Jobs claimed by this instance's workers", jobs_claimed.clone());
        let worker_slots_busy = Gauge::default();
        registry.register(
            "worker_slots_busy",
            "Worker slots held by a running job now (a job waiting on a shared commit gives its slot back)",
            worker_slots_busy.clone(),
        );
        let jobs_rescued = Counter::default();
        registry.register(
            "jobs_rescued",
            "Jobs whose lease expired (worker lost) returned to the queue",
            jobs_rescued.clone(),
        );
        let queue_depth = Family::<StateLabels, Gauge>::default();
        registry.register("queue_jobs", "Jobs in the queue by state (read at scrape)", queue_depth.clone());
        let queue_oldest_due_seconds = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "queue_oldest_due_seconds",
            "Age of the oldest job waiting to start (read at scrape)",
            queue_oldest_due_seconds.clone(),
        );
        let connections = Family::<StateLabels, Gauge>::default();
        registry.register(
            "connections",
            "Connections by health state, fleet-wide (read at scrape)",
            connections.clone(),
        );
        let connections_stale = Gauge::default();
        registry.register(
            "connections_stale",
            "Connections without a success for longer than the staleness limit (read at scrape)",
            connections_stale.clone(),
        );
        let incidents_open = Gauge::default();
        registry.register("incidents_open", "Open bank incidents (read at scrape)", incidents_open.clone());
        let workers_live = Gauge::default();
        registry.register(
            "workers_live",
            "Worker pools that reported within their lease (read at scrape)",
            workers_live.clone(),
        );
        registry.register("build", "Build information", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        Arc::new(Self {
            registry,
            http_requests,
            http_request_duration,
            db_pool_connections,
            db_pool_idle,
            db_pool_max,
            ready,
            refresh_outcomes,
            webhook_deliveries,
            institution_incident_open,
            institution_incident_expected_end,
            job_outcomes,
            job_duration,
            refresh_stage_duration,
            jobs_claimed,
            worker_slots_busy,
            jobs_rescued,
            queue_depth,
            queue_oldest_due_seconds,
            connections,
            connections_stale,
            incidents_open,
            workers_live,
        })
    }

    pub fn refresh_stored(&self, institution_id: impl std::fmt::Display, outcome: RefreshResult) {
        let labels = RefreshLabels { institution_id: institution_id.to_string(), outcome: outcome.as_str().to_owned() };
        self.refresh_outcomes.get_or_create(&labels).inc();
    }

    pub fn refresh_stage(&self, stage: RefreshStage, took: std::time::Duration) {
        let labels = StageLabels { stage: stage.as_str().to_owned() };
        self.refresh_stage_duration.get_or_create(&labels).observe(took.as_secs_f64());
    }

    pub fn delivery_attempted(&self, endpoint_id: impl std::fmt::Display, outcome: &str) {
        let labels = DeliveryLabels { endpoint_id: endpoint_id.to_string(), outcome: outcome.to_owned() };
        self.webhook_deliveries.get_or_create(&labels).inc();
    }

    /// Replaces the open-incident gauges: an institution whose incident ended drops out.
    pub fn set_open_incidents(&self, open: impl IntoIterator<Item = (String, i64)>) {
        self.institution_incident_open.clear();
        self.institution_incident_expected_end.clear();
        for (institution_id, expected_end) in open {
            let labels = InstitutionLabels { institution_id };
            self.institution_incident_open.get_or_create(&labels).set(1);
            self.institution_incident_expected_end.get_or_create(&labels).set(expected_end);
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s: catalogue lookups sit at the bottom, slow bank calls never block requests.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15))
}

impl crate::jobs::worker::PoolObserver for Metrics {
    fn claimed(&self, count: usize) {
        self.jobs_claimed.inc_by(count as u64);
    }

    fn finished(&self, kind: &str, outcome: &crate::jobs::Outcome, seconds: f64) {
        use crate::jobs::Outcome;
        let (name, result) = match outcome {
            Outcome::Succeeded(_) | Outcome::Completed(_) => ("succeeded", None),
            Outcome::Retry { result, .. } => ("retry", result.as_ref()),
            Outcome::Fail { result, .. } => ("failed", result.as_ref()),
            Outcome::Snooze { .. } => ("snoozed", None),
        };
        let code = result
            .and_then(|result| result["code"].as_u64())
            .map_or_else(|| "none".to_owned(), |code| code.to_string());
        self.job_outcomes.get_or_create(&JobLabels { kind: kind.to_owned(), outcome: name.to_owned(), code }).inc();
        self.job_duration.get_or_create(&KindLabels { kind: kind.to_owned() }).observe(seconds);
    }

    fn rescued(&self, count: u64) {
        self.jobs_rescued.inc_by(count);
    }

    fn busy(&self, occupied: usize) {
        self.worker_slots_busy.set(i64::try_from(occupied).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use std::ffi::OsStr;

    use super::colours_wanted;

    #[test]
    fn colours_only_at_a_terminal_and_never_under_no_color() {
        assert!(colours_wanted(true, None));
        assert!(colours_wanted(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset (no-color.org)");
        assert!(!colours_wanted(true, Some(OsStr::new("1"))));
        assert!(!colours_wanted(false, None), "a file or a pipe gets plain text");
        assert!(!colours_wanted(false, Some(OsStr::new("1"))));
    }
}
