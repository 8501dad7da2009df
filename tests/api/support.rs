//! `TestApp`: a feedwatch instance on port 0 over a fresh database cloned from a migrated
//! template (`database`), its logs captured (`logs`), and the helpers tests share.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use feedwatch::app::{Instance, InstanceSettings, WorkerSettings};
use feedwatch::auth::NewKey;
use feedwatch::connection::Sealer;
use feedwatch::http::HttpSettings;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

mod database;
mod logs;

pub use database::{fresh_database, maintenance};
use logs::logs;
pub use logs::{LogBuffer, all_logs, log_lines_with};

pub struct TestApp {
    pub addr: SocketAddr,
    pub pool: PgPool,
    pub database: String,
    /// A URL of this test's database, password included, for child processes.
    pub database_url: String,
    pub admin_key: String,
    pub client: reqwest::Client,
    instance: Option<Instance>,
}

/// Knobs a test may turn; everything else is the production default.
pub struct Options {
    pub request_timeout: Duration,
    pub import_timeout: Duration,
    pub max_body_bytes: usize,
    pub import_max_bytes: usize,
    pub cors_origins: Vec<String>,
    /// Background refresh workers; 0 (the default) leaves jobs to `refresh_pool().run_until_idle()`.
    pub workers: usize,
    pub refresh_cooldown: Duration,
    pub auth_throttle: feedwatch::auth::throttle::ThrottleSettings,
    /// Header read and keep-alive timeouts, connection cap.
    pub connections: feedwatch::http::listener::ConnectionLimits,
    pub console: feedwatch::http::console::Settings,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(30),
            import_timeout: Duration::from_secs(120),
            max_body_bytes: 1024 * 1024,
            import_max_bytes: 64 * 1024 * 1024,
            cors_origins: vec![],
            workers: 0,
            refresh_cooldown: Duration::ZERO,
            auth_throttle: Default::default(),
            connections: feedwatch::http::listener::ConnectionLimits::default(),
            console: Default::default(),
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(options: Options) -> Self {
        logs();
        let (connect, database, database_url) = fresh_database().await;
        let pool = PgPool::connect_with(connect).await.unwrap();
        let admin = NewKey::generate();
        let admin_key = admin.text.expose_secret().to_owned();
        let settings = InstanceSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            http: HttpSettings {
                cors_origins: options.cors_origins,
                max_body_bytes: options.max_body_bytes,
                import_max_bytes: options.import_max_bytes,
                request_timeout: options.request_timeout,
                import_timeout: options.import_timeout,
                auth_throttle: options.auth_throttle,
                connections: options.connections,
                console: options.console.clone(),
            },
            shutdown_grace: Duration::from_secs(5),
            bootstrap_admin_key: Some(SecretString::from(admin_key.clone())),
            sealer: sealer(),
            workers: worker_settings(options.workers, None),
            refresh_cooldown: options.refresh_cooldown,
            mount_sandbox: true,
            sandbox_listen: "127.0.0.1:0".parse().unwrap(),
            seed_demo: false,
            webhooks: webhook_settings(),
        };
        let instance = Instance::start(pool.clone(), settings).await.unwrap();
        Self {
            addr: instance.addr,
            pool,
            database,
            database_url,
            admin_key,
            // Idle pooled connections are dropped before the server's keep-alive timeout (5 s)
            // closes them: otherwise a request sent just as the server hangs up fails, as any
            // HTTP client with a longer idle timeout than its server's would.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
            instance: Some(instance),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The base URL of the sandbox bank this app serves on its own listener.
    pub fn sandbox_url(&self) -> String {
        format!("http://{}", self.instance().sandbox_addr.expect("the test app serves the sandbox bank"))
    }

    /// A request with the admin key.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(&self.admin_key)
    }

    /// A request with no credentials.
    pub fn anonymous(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Creates a key of `role` (bound to `tenant` for tenant keys) and returns its text.
    /// `GET path` with `key`, its body as JSON, whatever the status.
    pub async fn get_json(&self, key: &str, path: &str) -> Value {
        json_of(self.anonymous(reqwest::Method::GET, path).bearer_auth(key)).await
    }

    /// `POST path` with `key` and a JSON body, the answer's body as JSON, whatever the status.
    pub async fn post_json(&self, key: &str, path: &str, body: &Value) -> Value {
        json_of(self.anonymous(reqwest::Method::POST, path).bearer_auth(key).json(body)).await
    }

    pub async fn key(&self, role: &str, tenant: Option<uuid::Uuid>) -> String {
        let response = self
            .admin(reqwest::Method::POST, "/v1/api-keys")
            .json(&match tenant {
                Some(tenant) => serde_json::json!({ "role": role, "tenant_id": tenant, "label": "test" }),
                None => serde_json::json!({ "role": role, "label": "test" }),
            })
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["secret"].as_str().unwrap().to_owned()
    }

    /// A second instance on the same database, as another replica would be.
    pub async fn replica(&self) -> Instance {
        self.replica_on(self.pool.clone()).await
    }

    /// A second instance on the same database whose requests use `pool`.
    pub async fn replica_on(&self, pool: PgPool) -> Instance {
        let settings = InstanceSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            http: HttpSettings {
                cors_origins: vec![],
                max_body_bytes: 1024 * 1024,
                import_max_bytes: 64 * 1024 * 1024,
                request_timeout: Duration::from_secs(30),
                import_timeout: Duration::from_secs(120),
                auth_throttle: Default::default(),
                connections: Default::default(),
                console: Default::default(),
            },
            shutdown_grace: Duration::from_secs(5),
            bootstrap_admin_key: Some(SecretString::from(self.admin_key.clone())),
            sealer: sealer(),
            workers: worker_settings(0, None),
            refresh_cooldown: Duration::ZERO,
            mount_sandbox: false,
            sandbox_listen: "127.0.0.1:0".parse().unwrap(),
            seed_demo: false,
            webhooks: webhook_settings(),
        };
        Instance::start(pool, settings).await.unwrap()
    }

    /// A worker pool over this app's database that refreshes against the app's sandbox bank; drive it with `run_until_idle`.
    pub fn refresh_pool(&self) -> std::sync::Arc<feedwatch::jobs::worker::WorkerPool> {
        self.refresh_pool_with(&self.sandbox_url(), feedwatch::incident::Rules::default())
    }

    /// A worker pool refreshing against the sandbox bank at `sandbox_url`, with these incident rules.
    pub fn refresh_pool_with(
        &self,
        sandbox_url: &str,
        incidents: feedwatch::incident::Rules,
    ) -> std::sync::Arc<feedwatch::jobs::worker::WorkerPool> {
        let settings = WorkerSettings { incidents, ..worker_settings(8, Some(sandbox_url.to_owned())) };
        self.worker_pool(&settings, &webhook_settings(), &feedwatch::telemetry::Metrics::new())
    }

    /// A worker pool refreshing against the sandbox bank, counting into `metrics`.
    pub fn refresh_pool_measured(
        &self,
        metrics: &std::sync::Arc<feedwatch::telemetry::Metrics>,
    ) -> std::sync::Arc<feedwatch::jobs::worker::WorkerPool> {
        self.worker_pool(&worker_settings(8, Some(self.sandbox_url())), &webhook_settings(), metrics)
    }

    /// A worker pool (refreshes and webhook deliveries) whose deliveries use `webhooks`.
    pub fn webhook_pool(
        &self,
        webhooks: &feedwatch::webhook::Settings,
    ) -> std::sync::Arc<feedwatch::jobs::worker::WorkerPool> {
        self.worker_pool(&worker_settings(8, Some(self.sandbox_url())), webhooks, &feedwatch::telemetry::Metrics::new())
    }

    fn worker_pool(
        &self,
        settings: &WorkerSettings,
        webhooks: &feedwatch::webhook::Settings,
        metrics: &std::sync::Arc<feedwatch::telemetry::Metrics>,
    ) -> std::sync::Arc<feedwatch::jobs::worker::WorkerPool> {
        let sealer = std::sync::Arc::new(sealer());
        let pool = feedwatch::app::worker_pool_with(
            &self.pool,
            &sealer,
            &self.instance().catalog,
            settings,
            webhooks,
            Duration::from_secs(5),
            metrics,
        );
        std::sync::Arc::new(pool.unwrap())
    }

    pub fn instance(&self) -> &Instance {
        self.instance.as_ref().unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(instance) = self.instance.take() {
            instance.stop().await.unwrap();
        }
    }
}

fn worker_settings(concurrency: usize, sandbox_url: Option<String>) -> WorkerSettings {
    WorkerSettings {
        concurrency,
        db_connections: 4,
        lease: Duration::from_secs(60),
        refresh_timeout: Duration::from_secs(30),
        sandbox_url,
        incidents: feedwatch::incident::Rules::default(),
        stale_after: Duration::from_secs(48 * 3600),
        prefetch: 0,
        // The service's default: the buffer adapts to observed handler and claim times.
        prefetch_ceiling: feedwatch::jobs::pace::PREFETCH_CEILING,
        statements_in_flight: 1,
        // Tests drive pools until idle over many connections of one sandbox bank: no bulkhead
        // puts any of them off (tests/api/reliability.rs tests the bulkhead).
        institution_concurrency: 64,
        bank_timeout: Duration::from_secs(20),
        stalls: feedwatch::feed::stall::Rules::default(),
    }
}

/// Webhooks in tests reach this machine's loopback only: nothing a test (or a fuzzer) registers
/// can make the service send anything elsewhere.
pub fn webhook_settings() -> feedwatch::webhook::Settings {
    feedwatch::webhook::Settings {
        hosts: feedwatch::webhook::HostPolicy::from_list(vec!["127.0.0.1".parse().unwrap()]),
        timeout: Duration::from_secs(10),
    }
}

/// The credentials key every test instance shares, so replicas open each other's credentials.
pub fn sealer() -> Sealer {
    Sealer::from_config(&sealer_config()).unwrap()
}

/// The credentials key configuration, for child processes.
pub fn sealer_config() -> SecretString {
    static KEY: OnceLock<SecretString> = OnceLock::new();
    KEY.get_or_init(|| Sealer::generate_config("test")).clone()
}

/// A key rotation: a new key `k2` in front of the tests' key. Returns the rotated sealer (it opens
/// both) and one that knows `k2` only, to prove nothing still needs the old key.
pub fn rotated_sealers() -> (Sealer, Sealer) {
    let new = Sealer::generate_config("k2");
    let both = format!("{},{}", new.expose_secret(), sealer_config().expose_secret());
    (Sealer::from_config(&SecretString::from(both)).unwrap(), Sealer::from_config(&new).unwrap())
}

/// What [`TestApp::fed_account`] made.
pub struct FedAccount {
    pub tenant_key: String,
    pub connection: uuid::Uuid,
    pub account: uuid::Uuid,
}

impl TestApp {
    /// The id of a sandbox institution the service seeded (`healthy`, `flaky`, …).
    pub async fn sandbox_institution(&self, slug: &str) -> uuid::Uuid {
        let page: Value = self
            .admin(reqwest::Method::GET, &format!("/v1/institutions?q=sandbox-{slug}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["items"][0]["id"].as_str().unwrap().parse().unwrap()
    }

    /// A sandbox institution created through the API; returns its id.
    pub async fn institution(&self, slug: &str) -> uuid::Uuid {
        let response = self
            .admin(reqwest::Method::POST, "/v1/institutions")
            .json(&serde_json::json!({
                "slug": slug, "name": format!("Bank {slug}"), "provider": "sandbox", "ofx": { "org": "SANDBOX", "fid": "1" }
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"].as_str().unwrap().parse().unwrap()
    }

    /// A tenant's connection to the healthy sandbox bank with one checking account stored
    /// directly (no refresh has run): for tests that feed statements to the store themselves.
    pub async fn fed_account(&self) -> FedAccount {
        let tenant_key = self.key("tenant", Some(uuid::Uuid::new_v4())).await;
        let bank = self.sandbox_institution("healthy").await;
        let connection: uuid::Uuid =
            self.connection(&tenant_key, bank, "Feed", "p").await["id"].as_str().unwrap().parse().unwrap();
        let listed = reported_account("acct", feedwatch::connection::AccountKind::Checking, "Checking");
        let account = feedwatch::connection::store::upsert_account(&self.pool, connection, &listed).await.unwrap();
        FedAccount { tenant_key, connection, account }
    }

    /// Creates a connection with `key`; returns its JSON.
    pub async fn connection(&self, key: &str, institution: uuid::Uuid, name: &str, password: &str) -> Value {
        let response = self
            .client
            .post(self.url("/v1/connections"))
            .bearer_auth(key)
            .json(&serde_json::json!({
                "institution_id": institution,
                "display_name": name,
                "credentials": { "user_id": "user_good", "password": password }
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{:?}", response.text().await);
        response.json().await.unwrap()
    }
}

/// Sends `request` and reads the answer's body as JSON, whatever the status.
pub async fn json_of(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Asserts a response is a problem+json document with `status` and `code`, and returns it.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status of {}", response.url());
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"), "content type of {}", response.url());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], code, "problem code in {body}");
    assert_eq!(body["status"], status, "problem status in {body}");
    assert!(body["title"].is_string() && body["detail"].is_string() && body["type"].is_string(), "{body}");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()), "request_id in {body}");
    body
}

/// A sandbox bank with these dials on a free port, served until the test ends; returns its URL.
pub async fn serve_sandbox(config: feedwatch::sandbox::SandboxConfig) -> String {
    serve_sandbox_bank(config).await.0
}

/// [`serve_sandbox`], also returning the bank so a test can watch the requests it receives.
pub async fn serve_sandbox_bank(
    config: feedwatch::sandbox::SandboxConfig,
) -> (String, Arc<feedwatch::sandbox::SandboxBank>) {
    let bank = Arc::new(feedwatch::sandbox::SandboxBank::new(config, feedwatch::sandbox::Clock::System));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = feedwatch::http::sandbox_bank::router(bank.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), bank)
}

/// Applies one connection's statement as the refresh writer does (the caller holds the
/// connection's lock): `apply_statements` with a batch of one.
pub async fn apply_statement(
    conn: &mut PgConnection,
    connection_id: uuid::Uuid,
    accounts: &[(uuid::Uuid, &[feedwatch::feed::ReportedTransaction])],
    window_start: chrono::DateTime<chrono::Utc>,
) -> feedwatch::feed::Changes {
    let statement = feedwatch::feed::store::Statement { connection_id, accounts: accounts.to_vec(), window_start };
    let mut changes = feedwatch::feed::store::apply_statements(conn, std::slice::from_ref(&statement)).await.unwrap();
    assert_eq!(changes.len(), 1, "one statement applied, one answer");
    changes.remove(0)
}

/// A transaction as a bank reports it, posted `day` days after 2025-10-09 (a fixed day, so
/// windows in tests are fixed too), with the payee named after its FITID.
pub fn reported_transaction(fitid: &str, day: i64, amount: &str) -> feedwatch::feed::ReportedTransaction {
    feedwatch::feed::ReportedTransaction {
        fitid: fitid.into(),
        posted_at: chrono::DateTime::from_timestamp(1_760_000_000 + day * 86_400, 0).unwrap(),
        amount: amount.parse().unwrap(),
        currency: "USD".into(),
        name: format!("payee {fitid}"),
        memo: String::new(),
        check_number: String::new(),
        pending: false,
        replaces_fitid: None,
    }
}

/// An account as a bank lists it, with no balance or error: what tests that store accounts
/// themselves need.
pub fn reported_account<'a>(
    bank_account_id: &'a str,
    kind: feedwatch::connection::AccountKind,
    bank_name: &'a str,
) -> feedwatch::connection::store::ReportedAccount<'a> {
    feedwatch::connection::store::ReportedAccount {
        bank_account_id,
        kind,
        masked_number: "1",
        bank_name,
        currency: "USD",
        balance: None,
        available: None,
        balance_as_of: None,
        error_code: None,
    }
}

/// Sends the signal `name` (`KILL`, `TERM`, `STOP`, `CONT`) to the process `pid`.
pub fn signal(name: &str, pid: u32) {
    let status = std::process::Command::new("kill").args([format!("-{name}"), pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill -{name} {pid}");
}
