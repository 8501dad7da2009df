//! Faults the service must ride out by itself: its private PostgreSQL dying under load,
//! restarts on a directory another instance still holds, a database that answers with errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::operations::{start_serve, terminate};
use crate::support::signal;

/// A data directory of its own under the temporary directory (reachable by the `postgres` user
/// when the tests run as root).
fn private_data_dir(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("feedwatch-{name}-{}", uuid::Uuid::new_v4().simple()));
    let data_dir = dir.join("postgres");
    let text = data_dir.to_str().unwrap().to_owned();
    (dir, text)
}

fn postmaster_pid(data_dir: &str) -> Option<u32> {
    let text = std::fs::read_to_string(Path::new(data_dir).join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

/// Polls `check` every 20 ms until it holds or `limit` passes; returns how long it took.
pub(crate) async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ready(client: &reqwest::Client, addr: &str) -> bool {
    let response = client.get(format!("http://{addr}/readyz")).timeout(Duration::from_secs(2)).send().await;
    response.is_ok_and(|response| response.status() == 200)
}

#[tokio::test]
async fn a_killed_private_postgres_comes_back_by_itself_and_loses_no_acknowledged_write() {
    let (dir, data_dir) = private_data_dir("crash");
    let (mut serve, addr, lines) = start_serve(&[], &["--data-dir", &data_dir, "--no-demo"]);
    let key =
        lines.iter().find(|line| line.contains("first admin key")).unwrap().rsplit(' ').next().unwrap().to_owned();
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (client, addr, key) = (client.clone(), addr.clone(), key.clone());
            let (acknowledged, statuses, stop) = (Arc::clone(&acknowledged), Arc::clone(&statuses), stop.clone());
            tokio::spawn(async move {
                let mut written = 0;
                while !stop.is_cancelled() {
                    let response = client
                        .post(format!("http://{addr}/v1/api-keys"))
                        .bearer_auth(&key)
                        .json(&json!({ "role": "helpdesk", "label": format!("writer {writer}") }))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let Ok(response) = response else { continue };
                    let status = response.status().as_u16();
                    if status == 201 {
                        let body: Value = response.json().await.unwrap();
                        acknowledged.lock().unwrap().insert(body["id"].as_str().unwrap().to_owned());
                        written += 1;
                    } else {
                        let retry_after = response.headers().contains_key("retry-after");
                        let problem = response.headers()["content-type"] == "application/problem+json";
                        statuses.lock().unwrap().push((status, retry_after, problem));
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                written
            })
        })
        .collect();
    within(Duration::from_secs(30), "writes are acknowledged", || async { acknowledged.lock().unwrap().len() >= 20 })
        .await;

    let postmaster = postmaster_pid(&data_dir).expect("the private cluster's postmaster.pid");
    signal("KILL", postmaster);
    // Not "readiness notices the crash": the restart (100 ms) and crash recovery can finish
    // inside one readiness probe, whose pool retries connecting for up to half a second, so the
    // service may never look down (seen under load). That readiness does report a database
    // that stays down is the next test's.
    within(Duration::from_secs(10), "a new postmaster runs", || async {
        postmaster_pid(&data_dir).is_some_and(|pid| pid != postmaster && process_exists(pid))
    })
    .await;
    let recovered =
        within(Duration::from_secs(10), "readiness returns", || async { ready(&client, &addr).await }).await;
    let before = acknowledged.lock().unwrap().len();
    within(Duration::from_secs(10), "writes resume", || async { acknowledged.lock().unwrap().len() >= before + 20 })
        .await;
    stop.cancel();
    for writer in writers {
        writer.await.unwrap();
    }
    let new_postmaster = postmaster_pid(&data_dir).unwrap();
    assert_ne!(new_postmaster, postmaster, "a new postmaster runs");
    eprintln!("readiness returned {recovered:?} after the kill; refusals while down: {:?}", statuses.lock().unwrap());

    for (status, retry_after, problem) in statuses.lock().unwrap().iter() {
        assert!(*status == 503 && *retry_after && *problem, "a refusal while the database was down: {status}");
    }
    let ids = acknowledged.lock().unwrap().clone();
    let listed: BTreeSet<String> = list_key_ids(&client, &addr, &key).await;
    let lost: Vec<_> = ids.difference(&listed).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged writes lost: {lost:?}", lost.len(), ids.len());

    assert!(terminate(&mut serve).success());
    assert!(!process_exists(new_postmaster), "the restarted cluster stops with feedwatch");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn list_key_ids(client: &reqwest::Client, addr: &str, key: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut url = format!("http://{addr}/v1/api-keys?limit=100");
    loop {
        let response = client.get(&url).bearer_auth(key).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        for item in body["items"].as_array().unwrap() {
            ids.insert(item["id"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => url = format!("http://{addr}/v1/api-keys?limit=100&cursor={cursor}"),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn a_restart_right_after_feedwatch_was_killed_waits_for_the_old_cluster_to_stop() {
    let (dir, data_dir) = private_data_dir("restart");
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let (mut serve, addr, _) = start_serve(&[], &["--data-dir", &data_dir, "--no-demo"]);
        assert!(ready(&client, &addr).await);
        // Killed as a process supervisor would see it crash; its cluster is still stopping.
        serve.0.kill().unwrap();
        serve.0.wait().unwrap();
    }
    let old_postmaster = postmaster_pid(&data_dir);
    let (mut serve, addr, _) = start_serve(&[], &["--data-dir", &data_dir, "--no-demo"]);
    assert!(ready(&client, &addr).await);
    let postmaster = postmaster_pid(&data_dir).unwrap();
    assert_ne!(Some(postmaster), old_postmaster);
    assert!(terminate(&mut serve).success());
    assert!(!process_exists(postmaster), "the cluster never outlives feedwatch");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn with_its_cluster_gone_feedwatch_stops_promptly_and_a_failing_start_says_why() {
    let (dir, data_dir) = private_data_dir("gone");
    let client = reqwest::Client::new();
    // A long grace, so that "promptly" is not a race against the machine's load: a shutdown
    // that waited on the gone cluster would use all of it, one that does not takes a moment.
    let (mut serve, addr, _) = start_serve(&[], &["--data-dir", &data_dir, "--no-demo", "--shutdown-grace", "60s"]);
    assert!(ready(&client, &addr).await);
    // From now on the server cannot start: every restart fails.
    let conf = Path::new(&data_dir).join("postgresql.conf");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text.push_str("\nfeedwatch_test_bogus_setting = on\n");
    std::fs::write(&conf, text).unwrap();
    signal("KILL", postmaster_pid(&data_dir).unwrap());
    within(Duration::from_secs(5), "readiness notices the crash", || async { !ready(&client, &addr).await }).await;

    let stopping = Instant::now();
    assert!(terminate(&mut serve).success());
    let took = stopping.elapsed();
    assert!(took < Duration::from_secs(30), "stopping took {took:?}, as if it waited out its grace");

    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"))
        .args(["serve", "--listen", "127.0.0.1:0", "--no-demo", "--data-dir", &data_dir])
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("feedwatch_test_bogus_setting"), "the error quotes the server's log: {stderr}");
    assert!(started.elapsed() < Duration::from_secs(15), "it fails at once, took {:?}", started.elapsed());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until a statement of the app on `database` waits for a lock, and returns its backend.
async fn blocked_backend(admin: &mut sqlx::PgConnection, database: &str) -> i32 {
    let started = Instant::now();
    loop {
        let blocked: Option<i32> = sqlx::query_scalar(
            "select pid from pg_stat_activity where datname = $1 and wait_event_type = 'Lock' limit 1",
        )
        .bind(database)
        .fetch_optional(&mut *admin)
        .await
        .unwrap();
        if let Some(pid) = blocked {
            return pid;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "no request blocked on the lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_database_session_ended_by_the_server_answers_503_with_retry_after_not_500() {
    use sqlx::Connection;
    let app = crate::support::TestApp::spawn().await;
    // Verified once, the admin key is cached: the request below blocks in its own statement.
    assert_eq!(app.admin(reqwest::Method::GET, "/v1/api-keys").send().await.unwrap().status(), 200);
    let mut holder =
        sqlx::PgConnection::connect_with(&crate::support::maintenance().database(&app.database)).await.unwrap();
    let mut admin = sqlx::PgConnection::connect_with(&crate::support::maintenance()).await.unwrap();
    sqlx::query("begin").execute(&mut holder).await.unwrap();
    sqlx::query("lock table api_key in access exclusive mode").execute(&mut holder).await.unwrap();
    let request = tokio::spawn(app.admin(reqwest::Method::GET, "/v1/api-keys").send());
    let backend = blocked_backend(&mut admin, &app.database).await;
    // What a fast shutdown or a crash of the server does to a session: 57P01 mid-statement.
    let terminated: bool =
        sqlx::query_scalar("select pg_terminate_backend($1)").bind(backend).fetch_one(&mut admin).await.unwrap();
    assert!(terminated);
    let response = request.await.unwrap().unwrap();
    assert!(response.headers().contains_key("retry-after"), "{:?}", response.headers());
    crate::support::assert_problem(response, 503, "database_unavailable").await;
    sqlx::query("rollback").execute(&mut holder).await.unwrap();
}

#[tokio::test]
async fn readyz_answers_within_its_own_timeout_when_the_database_does_not() {
    use sqlx::Connection;
    let app = crate::support::TestApp::spawn().await;
    let mut holder =
        sqlx::PgConnection::connect_with(&crate::support::maintenance().database(&app.database)).await.unwrap();
    sqlx::query("begin").execute(&mut holder).await.unwrap();
    sqlx::query("lock table _sqlx_migrations in access exclusive mode").execute(&mut holder).await.unwrap();
    let started = Instant::now();
    let response = app.anonymous(reqwest::Method::GET, "/readyz").send().await.unwrap();
    let took = started.elapsed();
    crate::support::assert_problem(response, 503, "not_ready").await;
    assert!(took < Duration::from_millis(1500), "readyz took {took:?}");
    sqlx::query("rollback").execute(&mut holder).await.unwrap();
    assert_eq!(app.anonymous(reqwest::Method::GET, "/readyz").send().await.unwrap().status(), 200);
}

pub(crate) fn short_connection_limits(max_connections: usize) -> crate::support::Options {
    crate::support::Options {
        connections: feedwatch::http::listener::ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            keep_alive_timeout: Duration::from_secs(1),
            max_connections,
        },
        ..Default::default()
    }
}

/// Whether the server closes `socket` within `limit` (reads until end of stream).
pub(crate) async fn closed_within(socket: &mut tokio::net::TcpStream, limit: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut sink = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test]
async fn a_slow_header_flood_neither_slows_the_service_nor_keeps_its_sockets() {
    use tokio::io::AsyncWriteExt;
    let app = crate::support::TestApp::spawn_with(short_connection_limits(512)).await;
    let mut flood = Vec::new();
    for _ in 0..300 {
        let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: feedwatch\r\nX-Slow: ").await.unwrap();
        flood.push(socket);
    }
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(app.anonymous(reqwest::Method::GET, "/healthz").send().await.unwrap().status(), 200);
        assert_eq!(app.admin(reqwest::Method::GET, "/v1/api-keys").send().await.unwrap().status(), 200);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "two requests during the flood took {took:?}");
    }
    let started = Instant::now();
    for socket in &mut flood {
        assert!(closed_within(socket, Duration::from_secs(5)).await, "a slow header was held past its timeout");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_keep_alive_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = crate::support::TestApp::spawn_with(short_connection_limits(512)).await;
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(b"GET /healthz HTTP/1.1\r\nHost: feedwatch\r\n\r\n").await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = socket.read(&mut answer).await.unwrap();
    assert!(String::from_utf8_lossy(&answer[..read]).starts_with("HTTP/1.1 200"));
    let idle = Instant::now();
    assert!(closed_within(&mut socket, Duration::from_secs(5)).await, "the idle connection stayed open");
    assert!(idle.elapsed() >= Duration::from_millis(900), "closed after {:?}, before its timeout", idle.elapsed());
}

#[tokio::test]
async fn connections_over_the_cap_are_refused_with_a_problem_and_served_again_once_below() {
    let app = crate::support::TestApp::spawn_with(short_connection_limits(8)).await;
    // A fresh client per request: each request needs a connection of its own.
    let fresh = || reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(tokio::net::TcpStream::connect(app.addr).await.unwrap());
    }
    let refused = within(Duration::from_secs(5), "a connection over the cap is refused", || async {
        let response = fresh().get(app.url("/healthz")).send().await;
        response.is_ok_and(|response| response.status() == 503)
    });
    refused.await;
    let response = fresh().get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    crate::support::assert_problem(response, 503, "too_many_connections").await;
    drop(held);
    within(Duration::from_secs(5), "served again below the cap", || async {
        fresh().get(app.url("/healthz")).send().await.is_ok_and(|response| response.status() == 200)
    })
    .await;
}

async fn connection_state(app: &crate::support::TestApp, key: &str, id: &str) -> String {
    let response = app.anonymous(reqwest::Method::GET, &format!("/v1/connections/{id}")).bearer_auth(key).send().await;
    let body: Value = response.unwrap().json().await.unwrap();
    body["state"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn healthy_banks_refresh_on_time_while_one_bank_stalls_and_the_stalling_bank_opens_an_incident() {
    let app = crate::support::TestApp::spawn().await;
    let tenant = app.key("tenant", Some(uuid::Uuid::new_v4())).await;
    let (stalling, healthy) = (app.sandbox_institution("slow").await, app.sandbox_institution("healthy").await);
    // The stalling bank's refreshes are queued first: without bulkheads they would take every slot.
    for n in 0..8 {
        app.connection(&tenant, stalling, &format!("Stalled {n}"), "error_712").await;
    }
    let mut healthy_ids = Vec::new();
    for n in 0..4 {
        let created = app.connection(&tenant, healthy, &format!("Healthy {n}"), "pass_good").await;
        healthy_ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let settings = feedwatch::app::WorkerSettings {
        concurrency: 4,
        db_connections: 4,
        lease: Duration::from_secs(20),
        refresh_timeout: Duration::from_secs(15),
        sandbox_url: Some(app.sandbox_url()),
        incidents: feedwatch::incident::Rules { min_failed_connections: 3, ..feedwatch::incident::Rules::default() },
        stale_after: Duration::from_secs(48 * 3600),
        prefetch: 0,
        prefetch_ceiling: feedwatch::jobs::pace::PREFETCH_CEILING,
        statements_in_flight: 1,
        institution_concurrency: 2,
        bank_timeout: Duration::from_secs(4),
        stalls: feedwatch::feed::stall::Rules::default(),
    };
    let sealer = Arc::new(crate::support::sealer());
    let pool =
        feedwatch::app::worker_pool(&app.pool, &sealer, &app.instance().catalog, &settings, Duration::from_secs(1))
            .unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(Arc::new(pool).run(shutdown.clone()));

    // Two slots stall on the slow bank for the bank timeout; the other two serve the healthy bank.
    let took = within(Duration::from_secs(3), "every healthy connection refreshed", || async {
        for id in &healthy_ids {
            if connection_state(&app, &tenant, id).await != "healthy" {
                return false;
            }
        }
        true
    })
    .await;
    eprintln!("healthy connections refreshed within {took:?} while the other bank stalled");

    // Timeouts are the bank's failures: two rounds of two stalls reach the incident threshold.
    let opened = within(Duration::from_secs(20), "the stalling bank's incident opens", || async {
        let response = app.admin(reqwest::Method::GET, "/v1/incidents?state=open").send().await.unwrap();
        let page: Value = response.json().await.unwrap();
        page["items"].as_array().unwrap().iter().any(|incident| incident["institution"]["id"] == stalling.to_string())
    })
    .await;
    eprintln!("the incident opened after {opened:?} more");
    shutdown.cancel();
    running.await.unwrap();
}
