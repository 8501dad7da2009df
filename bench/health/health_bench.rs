//! Fleet-view benchmark (issue #7): `GET /v1/health/summary` at 10 thousand and at 1 million
//! connections in one run, and the dashboard's filtered connection lists beside it.
//!
//! One private PostgreSQL (durable settings) holds two databases, one per fleet size, seeded
//! with the same shape: 1,000 institutions, ten connections per tenant, a realistic mix of
//! states, error codes and stale connections, a day of finished refresh jobs (half the fleet)
//! and the same small backlog (200 waiting, 16 running). Two service instances serve them on
//! two ports; requests alternate between them in rounds so machine noise hits both alike.
//! Prints one JSON document.

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use feedwatch::app::{Instance, InstanceSettings, WorkerSettings};
use feedwatch::auth::NewKey;
use feedwatch::connection::Sealer;
use feedwatch::devdb::{Durability, LocalPostgres};
use feedwatch::http::HttpSettings;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use sqlx::PgPool;

#[derive(Debug, Parser)]
#[command(about = "feedwatch fleet-view benchmark")]
struct Cli {
    /// Fleet sizes, smallest first.
    #[arg(long, value_delimiter = ',', default_value = "10000,1000000")]
    sizes: Vec<i64>,
    /// Measured requests per endpoint, per size and round.
    #[arg(long, default_value_t = 300)]
    requests: usize,
    #[arg(long, default_value_t = 3)]
    rounds: usize,
}

struct Fleet {
    size: i64,
    instance: Instance,
    pool: PgPool,
    key: String,
    institution: String,
    /// A connection waiting for its user, for the console's detail page.
    connection: String,
    /// The console session of `key` (`fw_console=<id>`).
    console_cookie: String,
    seed_seconds: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // The service's own logging (its default filter unless RUST_LOG says otherwise): its spans and
    // lines cost what they cost in the service.
    feedwatch::telemetry::init_tracing(feedwatch::config::LogFormat::Pretty);
    let cli = Cli::parse();
    let dir = tempdir()?;
    let local =
        LocalPostgres::start(&dir.join("postgres"), Durability::Durable).await.context("starting PostgreSQL")?;
    let admin = feedwatch::database::pool(local.url(), 2)?;
    let mut fleets = Vec::new();
    for size in &cli.sizes {
        fleets.push(fleet(&admin, local.url(), *size).await?);
    }
    let client = reqwest::Client::new();
    let endpoints = |fleet: &Fleet| {
        vec![
            ("summary", "/v1/health/summary".to_owned()),
            ("summary_institution", format!("/v1/health/summary?institution_id={}", fleet.institution)),
            ("list_state", "/v1/connections?state=bank_issue&limit=50".to_owned()),
            ("list_error_code", "/v1/connections?error_code=103&limit=50".to_owned()),
            ("list_institution", format!("/v1/connections?institution_id={}&limit=50", fleet.institution)),
            ("list_stale", "/v1/connections?stale_for=7d&limit=50".to_owned()),
            // The helpdesk console's pages (issue #15: p95 under 50 ms, under 150 KB each).
            ("console_overview", "/console".to_owned()),
            ("console_connections", "/console/connections?state=bank_issue".to_owned()),
            ("console_connections_search", "/console/connections?q=account%207".to_owned()),
            ("console_connection", format!("/console/connections/{}", fleet.connection)),
            ("console_incidents", "/console/incidents".to_owned()),
            ("console_errors", "/console/errors?q=password%20changed".to_owned()),
            ("console_error_entry", "/console/errors/103".to_owned()),
            ("console_institutions", "/console/institutions".to_owned()),
            ("console_institution", format!("/console/institutions/{}", fleet.institution)),
        ]
    };
    let mut page_bytes: Vec<serde_json::Map<String, serde_json::Value>> =
        fleets.iter().map(|_| serde_json::Map::new()).collect();
    let mut samples: Vec<Vec<Vec<Duration>>> =
        fleets.iter().map(|fleet| endpoints(fleet).iter().map(|_| Vec::new()).collect()).collect();
    for _round in 0..cli.rounds {
        for (f, fleet) in fleets.iter().enumerate() {
            for (e, (_, path)) in endpoints(fleet).iter().enumerate() {
                let url = format!("http://{}{}", fleet.instance.addr, path);
                for n in 0..cli.requests + 20 {
                    let started = Instant::now();
                    let request = if path.starts_with("/console") {
                        client.get(&url).header(reqwest::header::COOKIE, &fleet.console_cookie)
                    } else {
                        client.get(&url).bearer_auth(&fleet.key)
                    };
                    let response = request.send().await?;
                    anyhow::ensure!(response.status() == 200, "{url}: {}", response.status());
                    let body = response.bytes().await?;
                    if n >= 20 {
                        samples[f][e].push(started.elapsed());
                    }
                    if n == 0 && path.starts_with("/console") {
                        page_bytes[f].insert(endpoints(fleet)[e].0.to_owned(), json!(body.len()));
                    }
                }
            }
        }
    }
    let mut measured = Vec::new();
    for (f, fleet) in fleets.iter().enumerate() {
        let mut endpoints_json = serde_json::Map::new();
        for (e, (name, _)) in endpoints(fleet).iter().enumerate() {
            endpoints_json.insert((*name).to_owned(), stats(&mut samples[f][e]));
        }
        measured.push(json!({
            "connections": fleet.size, "seed_seconds": round3(fleet.seed_seconds), "endpoints": endpoints_json,
            "console_page_bytes": page_bytes[f],
            "plans": plan_rows(&fleet.pool).await?,
        }));
    }
    let mut report =
        json!({ "sizes": cli.sizes, "requests_per_round": cli.requests, "rounds": cli.rounds, "fleets": measured });
    let (small, large) = (&report["fleets"][0]["endpoints"], &report["fleets"][fleets.len() - 1]["endpoints"]);
    let mut ratios = serde_json::Map::new();
    for (name, _) in endpoints(&fleets[0]) {
        let ratio = large[name]["p50_ms"].as_f64().unwrap_or(0.0) / small[name]["p50_ms"].as_f64().unwrap_or(1.0);
        ratios.insert(name.to_owned(), json!(round3(ratio)));
    }
    report["p50_ratio_largest_to_smallest"] = json!(ratios);
    println!("{}", serde_json::to_string_pretty(&report)?);
    for fleet in fleets {
        fleet.instance.stop().await?;
        fleet.pool.close().await;
    }
    admin.close().await;
    local.stop().await;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

async fn fleet(admin: &PgPool, url: &str, size: i64) -> anyhow::Result<Fleet> {
    let name = format!("fleet_{size}");
    sqlx::query(&format!("create database {name}")).execute(admin).await?;
    let url = url.rsplit_once('/').map(|(base, _)| format!("{base}/{name}")).context("database URL")?;
    let pool = feedwatch::database::pool(&url, 20)?;
    feedwatch::database::migrate(&pool).await?;
    let started = Instant::now();
    seed(&pool, size).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    let key = NewKey::generate();
    let text = key.text.expose_secret().to_owned();
    let settings = InstanceSettings {
        listen: "127.0.0.1:0".parse()?,
        http: HttpSettings {
            cors_origins: vec![],
            max_body_bytes: 1 << 20,
            import_max_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            import_timeout: Duration::from_secs(120),
            auth_throttle: Default::default(),
            connections: Default::default(),
            console: Default::default(),
        },
        shutdown_grace: Duration::from_secs(5),
        bootstrap_admin_key: Some(SecretString::from(text.clone())),
        sealer: Sealer::from_config(&Sealer::generate_config("bench"))?,
        workers: WorkerSettings {
            concurrency: 0,
            db_connections: 2,
            lease: Duration::from_secs(60),
            refresh_timeout: Duration::from_secs(60),
            sandbox_url: None,
            incidents: feedwatch::incident::Rules::default(),
            stale_after: Duration::from_secs(48 * 3600),
            prefetch: 0,
            prefetch_ceiling: 0,
            statements_in_flight: 1,
            institution_concurrency: 4,
            bank_timeout: Duration::from_secs(30),
            stalls: feedwatch::feed::stall::Rules::default(),
        },
        refresh_cooldown: Duration::ZERO,
        webhooks: feedwatch::webhook::Settings::default(),
        mount_sandbox: false,
        sandbox_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        seed_demo: false,
    };
    let instance = Instance::start(pool.clone(), settings).await?;
    // The instance's rollup folds the seed's deltas in within a couple of seconds.
    while sqlx::query_scalar::<_, i64>("select count(*) from health_delta").fetch_one(&pool).await? > 0 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let institution: String =
        sqlx::query_scalar("select institution_id::text from institution_health order by failing desc limit 1")
            .fetch_one(&pool)
            .await?;
    let connection: String =
        sqlx::query_scalar("select id::text from connection where state = 'needs_user_action' limit 1")
            .fetch_one(&pool)
            .await?;
    let console_cookie = console_session(&instance, &text).await?;
    Ok(Fleet { size, instance, pool, key: text, institution, connection, console_cookie, seed_seconds })
}

/// Signs in to the console with `key` and returns the session cookie, as a browser would hold it.
async fn console_session(instance: &Instance, key: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let response =
        client.post(format!("http://{}/console/sign-in", instance.addr)).form(&[("key", key)]).send().await?;
    anyhow::ensure!(response.status() == 303, "console sign-in: {}", response.status());
    let cookie = response.headers().get(reqwest::header::SET_COOKIE).context("no session cookie")?.to_str()?;
    Ok(cookie.split(';').next().unwrap_or_default().to_owned())
}

/// The same shape at every size: 1,000 institutions, ten connections a tenant, states and
/// codes in fixed shares, 2% stale, half the fleet's refreshes of the last day kept as finished
/// jobs, and a backlog that does not grow with the fleet (workers keep up).
async fn seed(pool: &PgPool, size: i64) -> anyhow::Result<()> {
    sqlx::query(
        "insert into institution (id, slug, name, provider, ofx_url)
         select gen_random_uuid(), 'bank-' || n, 'Bank ' || n, 'ofx', 'https://ofx.bank' || n || '.example/ofx'
         from generate_series(1, 1000) n",
    )
    .execute(pool)
    .await?;
    sqlx::query(
        "with banks as (select array_agg(id order by slug) as ids from institution)
         insert into connection (id, tenant_id, institution_id, display_name, state, error_code, error_at,
                                 last_attempt_at, last_success_at, failure_streak, stale, disconnected_at,
                                 credentials_sealed, credentials_key_id, next_refresh_at)
         select gen_random_uuid(),
                ('00000000-0000-4000-8000-' || lpad(to_hex(n / 10), 12, '0'))::uuid,
                banks.ids[1 + (hashint8(n)::bigint & 1023) % 1000],
                'Account ' || n, s.state, s.code, case when s.code is not null then now() end,
                now() - interval '1 hour',
                now() - case when n % 50 = 3 then interval '9 days' else make_interval(hours => (n % 24)::int) end,
                case when s.code is not null then 1 + n % 5 else 0 end,
                n % 50 = 3 and s.state <> 'disconnected',
                case when s.state = 'disconnected' then now() end,
                '\\x00', 'bench', now() + make_interval(secs => (n % 86400)::int)
         from banks, generate_series(1, $1) n,
              lateral (select case
                  when n % 100 < 90 then 'healthy' when n % 100 < 93 then 'degraded'
                  when n % 100 < 94 then 'needs_user_action' when n % 100 < 95 then 'needs_user_action'
                  when n % 100 < 97 then 'bank_issue' when n % 100 < 98 then 'provider_issue'
                  when n % 100 < 99 then 'syncing' else 'disconnected' end as state,
                  case when n % 100 between 90 and 92 then 705 when n % 100 = 93 then 103 when n % 100 = 94 then 185
                       when n % 100 between 95 and 96 then 102 when n % 100 = 97 then 105 end as code) s",
    )
    .bind(size)
    .execute(pool)
    .await?;
    sqlx::query(
        "insert into job (state, kind, args, unique_key, attempt, run_at, finished_at, lease_expires_at, connection_id, trigger)
         select case when n <= 200 then 'available' when n <= 216 then 'running' else 'succeeded' end, 'refresh',
                jsonb_build_object('connection_id', c.id), 'refresh:' || c.id,
                case when n <= 200 then 0 else 1 end, now() - make_interval(secs => (n % 3600)::int),
                case when n > 216 then now() - make_interval(secs => (n % 86400)::int) end,
                case when n > 200 and n <= 216 then now() + interval '1 minute' end, c.id, 'scheduled'
         from (select id, row_number() over () as n from connection limit greatest($1 / 2, 216)) c(id, n)",
    )
    .bind(size)
    .execute(pool)
    .await?;
    sqlx::raw_sql("vacuum analyze").execute(pool).await?;
    Ok(())
}

/// Rows the summary's statements read, from their plans: evidence that it does not scan the fleet.
async fn plan_rows(pool: &PgPool) -> anyhow::Result<serde_json::Value> {
    let tally: i64 = sqlx::query_scalar("select count(*) from health_tally").fetch_one(pool).await?;
    let institutions: i64 = sqlx::query_scalar("select count(*) from institution_health").fetch_one(pool).await?;
    let plan: Vec<String> = sqlx::query_scalar(
        "explain (analyze, costs off, timing off) select id from connection where state = 'bank_issue' limit 50",
    )
    .fetch_all(pool)
    .await?;
    Ok(json!({ "health_tally_rows": tally, "institution_health_rows": institutions, "list_state_plan": plan }))
}

fn stats(samples: &mut [Duration]) -> serde_json::Value {
    samples.sort();
    let at = |q: f64| {
        let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
        round3(samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3))
    };
    let mean = samples.iter().map(Duration::as_secs_f64).sum::<f64>() / samples.len().max(1) as f64 * 1e3;
    json!({ "n": samples.len(), "p50_ms": at(0.5), "p90_ms": at(0.9), "p95_ms": at(0.95), "p99_ms": at(0.99), "mean_ms": round3(mean) })
}

fn round3(value: f64) -> f64 {
    (value * 1000.0).round() / 1000.0
}

fn tempdir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("feedwatch-health-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
