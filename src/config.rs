//! Configuration: every setting is a flag and a `FEEDWATCH_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, ValueEnum};
use secrecy::SecretString;

use crate::duration::parse_duration;
use crate::sandbox::{MaintenanceWindow, SandboxConfig};

/// Where the database comes from.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL. When absent, feedwatch starts a private PostgreSQL under --data-dir.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<SecretString>,

    /// Directory of the private PostgreSQL cluster used when DATABASE_URL is not set.
    /// Created on first start; data survives restarts.
    #[arg(long, env = "FEEDWATCH_DATA_DIR", default_value = ".feedwatch/postgres")]
    pub data_dir: PathBuf,

    /// Keys that seal bank credentials at rest: `id:base64(32 bytes)`, comma-separated, newest
    /// first (the first seals, all open). Required with DATABASE_URL; with the private
    /// PostgreSQL a key is generated beside the data directory on first start.
    #[arg(long, env = "FEEDWATCH_CREDENTIALS_KEYS", hide_env_values = true)]
    pub credentials_keys: Option<SecretString>,

    /// Largest number of pooled database connections the API uses.
    #[arg(long, env = "FEEDWATCH_DB_MAX_CONNECTIONS", default_value_t = 20)]
    pub db_max_connections: u32,
}

/// Settings of `feedwatch serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,

    /// Address the HTTP server binds to. Port 0 picks a free port (printed at start).
    #[arg(long, env = "FEEDWATCH_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// An admin API key accepted from first start, for bootstrapping (format fw_<id>_<secret>,
    /// as printed by `feedwatch keys create`). When absent and no key exists yet, a new admin
    /// key is generated and printed once.
    #[arg(long, env = "FEEDWATCH_BOOTSTRAP_ADMIN_KEY", hide_env_values = true)]
    pub bootstrap_admin_key: Option<SecretString>,

    /// Origins allowed to call the API from a browser (comma-separated); empty allows none.
    #[arg(long, env = "FEEDWATCH_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "FEEDWATCH_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Largest statement file accepted by `POST …/imports`, in bytes (years of a busy account's
    /// history in OFX run to tens of megabytes).
    #[arg(long, env = "FEEDWATCH_IMPORT_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub import_max_bytes: usize,

    /// Longest a request may take before it is answered 503 (e.g. 30s, 500ms, 2m).
    #[arg(long, env = "FEEDWATCH_REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub request_timeout: Duration,

    /// Longest a statement import (`POST …/imports`) may take, upload included, before it is
    /// answered 503 and rolled back; every other route keeps `FEEDWATCH_REQUEST_TIMEOUT`.
    #[arg(long, env = "FEEDWATCH_IMPORT_TIMEOUT", default_value = "120s", value_parser = parse_duration)]
    pub import_timeout: Duration,

    /// Failed authentication attempts one client address may make at once before it is answered
    /// 429 with Retry-After; 0 turns the throttle off. The address is the TCP peer's: behind a
    /// proxy, every client shares the proxy's (throttle there instead).
    #[arg(long, env = "FEEDWATCH_AUTH_FAILURE_BURST", default_value_t = 20)]
    pub auth_failure_burst: u32,

    /// Time that gives a throttled address one more failed attempt (e.g. 3s).
    #[arg(long, env = "FEEDWATCH_AUTH_FAILURE_REFILL", default_value = "3s", value_parser = parse_duration)]
    pub auth_failure_refill: Duration,

    /// Console sessions end after this long without a request (e.g. 30m).
    #[arg(long, env = "FEEDWATCH_CONSOLE_IDLE_TIMEOUT", default_value = "30m", value_parser = parse_duration)]
    pub console_idle_timeout: Duration,

    /// Console sessions end this long after sign-in, however busy (e.g. 12h).
    #[arg(long, env = "FEEDWATCH_CONSOLE_SESSION_LIFETIME", default_value = "12h", value_parser = parse_duration)]
    pub console_session_lifetime: Duration,

    /// Mark the console's session cookie Secure even without `X-Forwarded-Proto: https` (for a TLS
    /// proxy that does not send it).
    #[arg(long, env = "FEEDWATCH_CONSOLE_SECURE_COOKIES")]
    pub console_secure_cookies: bool,

    /// Longest in-flight requests may run after SIGTERM/SIGINT before the process exits.
    #[arg(long, env = "FEEDWATCH_SHUTDOWN_GRACE", default_value = "25s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,

    /// Longest wait for a request's head (request line and headers), counted from the accept
    /// or from the end of the previous response; the connection is closed when it passes.
    #[arg(long, env = "FEEDWATCH_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub header_read_timeout: Duration,

    /// A connection with no request in progress for this long is closed. Behind a load
    /// balancer, set it (and the header read timeout) above the balancer's idle timeout.
    #[arg(long, env = "FEEDWATCH_KEEP_ALIVE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub keep_alive_timeout: Duration,

    /// Connections served at once; further ones get a 503 problem (`too_many_connections`,
    /// Retry-After 1) and are closed.
    #[arg(long, env = "FEEDWATCH_MAX_CONNECTIONS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Log line format.
    #[arg(long, env = "FEEDWATCH_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty)]
    pub log_format: LogFormat,

    #[command(flatten)]
    pub workers: WorkerArgs,

    /// After a successful refresh, how long a manual refresh of the same connection answers 429.
    #[arg(long, env = "FEEDWATCH_REFRESH_COOLDOWN", default_value = "60s", value_parser = parse_duration)]
    pub refresh_cooldown: Duration,

    /// Serve the sandbox bank on its own listener (--sandbox-addr) and seed a demo tenant with
    /// connections in varied states. On by default with the private PostgreSQL; off with
    /// DATABASE_URL.
    #[arg(long, env = "FEEDWATCH_DEMO", overrides_with = "no_demo")]
    pub demo: bool,

    /// Never mount the sandbox bank or seed demo data.
    #[arg(long, overrides_with = "demo")]
    pub no_demo: bool,

    /// Where the sandbox bank listens in demo mode: unauthenticated, so loopback by default.
    /// Port 0 picks a free port (printed at start).
    #[arg(long, env = "FEEDWATCH_SANDBOX_ADDR", default_value = "127.0.0.1:0")]
    pub sandbox_addr: SocketAddr,
}

impl ServeArgs {
    pub fn connection_limits(&self) -> crate::http::listener::ConnectionLimits {
        crate::http::listener::ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            keep_alive_timeout: self.keep_alive_timeout,
            max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
        }
    }
}

/// Settings of the refresh workers (in `serve` and in `feedwatch worker`).
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Refreshes run at once by this instance; 0 runs none (an API-only replica).
    #[arg(long, env = "FEEDWATCH_WORKERS", default_value_t = 16)]
    pub workers: usize,

    /// Database connections of the workers' own pool, so refreshes cannot starve the API.
    #[arg(long, env = "FEEDWATCH_WORKER_DB_CONNECTIONS", default_value_t = 5)]
    pub worker_db_connections: u32,

    /// How long a claimed job is leased before another worker may take it over; extended by a
    /// heartbeat every third of it.
    #[arg(long, env = "FEEDWATCH_WORKER_LEASE", default_value = "60s", value_parser = parse_duration)]
    pub worker_lease: Duration,

    /// How long one refresh may take before it is abandoned and retried.
    #[arg(long, env = "FEEDWATCH_REFRESH_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub refresh_timeout: Duration,

    /// Base URL of the sandbox bank for `sandbox` institutions (default: this instance's own
    /// sandbox listener in demo mode).
    #[arg(long, env = "FEEDWATCH_SANDBOX_URL")]
    pub sandbox_url: Option<String>,

    /// Jobs claimed beyond the free slots and held until one frees, so a freed slot does not
    /// wait for a claim round trip [default: a quarter of --workers, growing up to 1 000 while
    /// the slots finish jobs faster than claims return; a value given here is fixed]. Their
    /// leases run while they wait, so keep it well below what the workers finish in a lease.
    #[arg(long, env = "FEEDWATCH_WORKER_PREFETCH")]
    pub worker_prefetch: Option<usize>,

    /// Claim and completion statements in flight at once (each holds a worker database
    /// connection): 2 lets one execute while the other waits for its commit to reach the disk.
    #[arg(long, env = "FEEDWATCH_WORKER_STATEMENTS_IN_FLIGHT", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub worker_statements_in_flight: u16,

    /// A connection with no successful refresh for this long is stale: counted as such and
    /// degraded, error or not.
    #[arg(long, env = "FEEDWATCH_STALE_AFTER", default_value = "48h", value_parser = parse_duration)]
    pub stale_after: Duration,

    /// Refreshes of one institution this instance runs at once; more wait a few seconds (no
    /// attempt spent), so a bank that stalls cannot take every worker slot.
    #[arg(long, env = "FEEDWATCH_INSTITUTION_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub institution_concurrency: u16,

    /// Longest one exchange with a bank may take (connecting, asking, reading the reply); a bank
    /// that takes longer fails the refresh with 712, which counts towards an incident. Must be
    /// shorter than the worker lease and the refresh timeout.
    #[arg(long, env = "FEEDWATCH_BANK_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub bank_timeout: Duration,

    /// An account whose refreshes succeed is stalled only after at least this much silence,
    /// however regular its rhythm (whole days), so quiet accounts are not flagged.
    #[arg(long, env = "FEEDWATCH_STALL_FLOOR", default_value = "14d", value_parser = parse_duration)]
    pub stall_floor: Duration,

    #[command(flatten)]
    pub incidents: IncidentArgs,

    #[command(flatten)]
    pub webhooks: WebhookArgs,
}

/// Where webhooks may be sent, and how long a delivery may take.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// The only hosts webhooks may be registered for and delivered to (comma-separated names or
    /// IP addresses). Unset: any host whose addresses are all public (global unicast);
    /// loopback, private, link-local and other special addresses are refused.
    #[arg(long, env = "FEEDWATCH_WEBHOOK_ALLOWED_HOSTS", value_delimiter = ',', value_parser = parse_allowed_host)]
    pub webhook_allowed_hosts: Vec<Option<crate::webhook::AllowedHost>>,

    /// Longest one webhook delivery may take, connecting included.
    #[arg(long, env = "FEEDWATCH_WEBHOOK_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub webhook_timeout: Duration,
}

impl WebhookArgs {
    pub fn settings(&self) -> crate::webhook::Settings {
        crate::webhook::Settings {
            hosts: crate::webhook::HostPolicy::from_list(
                self.webhook_allowed_hosts.iter().flatten().cloned().collect(),
            ),
            timeout: self.webhook_timeout,
        }
    }
}

/// An allow-list entry; an empty one (`FEEDWATCH_WEBHOOK_ALLOWED_HOSTS=`) stands for none.
fn parse_allowed_host(text: &str) -> Result<Option<crate::webhook::AllowedHost>, String> {
    if text.trim().is_empty() { Ok(None) } else { text.parse().map(Some) }
}

/// When a bank counts as being in an incident, and how affected connections are retried.
#[derive(Debug, Clone, Args)]
pub struct IncidentArgs {
    /// How far back incident detection looks at refresh outcomes.
    #[arg(long, env = "FEEDWATCH_INCIDENT_WINDOW", default_value = "15m", value_parser = parse_duration)]
    pub incident_window: Duration,

    /// Distinct connections of one institution that must fail bank-side within the window.
    #[arg(long, env = "FEEDWATCH_INCIDENT_MIN_CONNECTIONS", default_value_t = 5, value_parser = clap::value_parser!(i64).range(1..))]
    pub incident_min_connections: i64,

    /// …and their least share of the institution's connections attempted in the window (0 to 1).
    #[arg(long, env = "FEEDWATCH_INCIDENT_MIN_SHARE", default_value_t = 0.5, value_parser = parse_rate)]
    pub incident_min_share: f64,

    /// How often connections of an institution in an incident are retried.
    #[arg(long, env = "FEEDWATCH_INCIDENT_RETRY_EVERY", default_value = "30m", value_parser = parse_duration)]
    pub incident_retry_every: Duration,

    /// Distinct connections that must succeed again to resolve a detected incident.
    #[arg(long, env = "FEEDWATCH_INCIDENT_RESOLVE_AFTER", default_value_t = 3, value_parser = clap::value_parser!(i64).range(1..))]
    pub incident_resolve_after: i64,
}

impl IncidentArgs {
    pub fn rules(&self) -> crate::incident::Rules {
        crate::incident::Rules {
            window: chrono::TimeDelta::from_std(self.incident_window).unwrap_or(chrono::TimeDelta::MAX),
            min_failed_connections: self.incident_min_connections,
            min_failed_share: self.incident_min_share,
            retry_every: self.incident_retry_every,
            resolve_after_successes: self.incident_resolve_after,
        }
    }
}

/// Settings of `feedwatch sandbox-bank`.
#[derive(Debug, Clone, Args)]
pub struct SandboxBankArgs {
    /// Address the sandbox bank binds to. Port 0 picks a free port (printed at start).
    #[arg(long, env = "FEEDWATCH_SANDBOX_LISTEN", default_value = "127.0.0.1:8081")]
    pub listen: SocketAddr,

    /// Delay added to every reply (e.g. 50ms).
    #[arg(long, env = "FEEDWATCH_SANDBOX_LATENCY", default_value = "0ms", value_parser = parse_duration)]
    pub latency: Duration,

    /// Further delay of every reply from the `slow` institution.
    #[arg(long, env = "FEEDWATCH_SANDBOX_SLOW_LATENCY", default_value = "3s", value_parser = parse_duration)]
    pub slow_latency: Duration,

    /// Share of the `flaky` institution's requests that fail bank-side, from 0 to 1.
    #[arg(long, env = "FEEDWATCH_SANDBOX_FLAKY_RATE", default_value_t = 0.3, value_parser = parse_rate)]
    pub flaky_rate: f64,

    /// When the `maintenance` institution is down: `always`, `never` or a daily UTC window
    /// such as `02:00-04:00`.
    #[arg(long, env = "FEEDWATCH_SANDBOX_MAINTENANCE", default_value = "always")]
    pub maintenance: MaintenanceWindow,

    /// Seed of account numbers, transactions and the flaky institution's failures.
    #[arg(long, env = "FEEDWATCH_SANDBOX_SEED", default_value_t = 42)]
    pub seed: u64,

    /// Longest a stalled reply (password `error_712`) is held before it is answered 504.
    #[arg(long, env = "FEEDWATCH_SANDBOX_STALL_LIMIT", default_value = "10m", value_parser = parse_duration)]
    pub stall_limit: Duration,

    /// Longest in-flight requests may run after SIGTERM/SIGINT before the process exits.
    #[arg(long, env = "FEEDWATCH_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

impl SandboxBankArgs {
    pub fn sandbox_config(&self) -> SandboxConfig {
        SandboxConfig {
            latency: self.latency,
            slow_latency: self.slow_latency,
            flaky_rate: self.flaky_rate,
            maintenance: self.maintenance,
            seed: self.seed,
            stall_limit: self.stall_limit,
        }
    }
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err(format!("`{text}` is not a share between 0 and 1")),
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}
