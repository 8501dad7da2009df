//! Kill-anywhere: a `feedwatch worker` process is SIGKILLed at each point of the refresh path,
//! round after round; afterwards every job is rescued and completes, and every connection's
//! stored transactions are exactly the sandbox bank's ledger for the window it asked for: nothing
//! lost, nothing doubled, nothing altered. The bank's clock stands still, so its ledger is
//! fixed and computable here (`sandbox::ledger`).

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use feedwatch::jobs::backoff::{Backoff, Backoffs};
use feedwatch::jobs::fault;
use feedwatch::refresh::job::{FAULT_EXCHANGED, FAULT_STORED};
use feedwatch::refresh::writer::{FAULT_COMMITTING, FAULT_QUEUED, FAULT_WRITTEN};
use feedwatch::sandbox::{Clock, ManualClock, SandboxBank, SandboxConfig, ledger};
use reqwest::Method;
use rust_decimal::Decimal;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use uuid::Uuid;

use crate::support::{TestApp, signal};

/// Where a worker is killed: at an armed fault point, or while the bank holds its request.
#[derive(Debug, Clone, Copy)]
enum Kill {
    At(&'static str),
    MidExchange,
}

const KILLS: [Kill; 6] = [
    Kill::At(fault::CLAIMED),
    Kill::MidExchange,
    Kill::At(FAULT_EXCHANGED),
    // Results queued in the group commit's writer, nothing of them written.
    Kill::At(FAULT_QUEUED),
    Kill::At(FAULT_STORED),
    // A refresh's job completes in the writer's commit (group commit), not in the pool's batched
    // completions (`fault::COMPLETING`, which refreshes no longer pass): the kill lands while the
    // writer's transaction runs its statements and commits.
    Kill::At(FAULT_COMMITTING),
];
const ROUNDS: usize = 3;
/// Every kill spends an attempt of each job the worker held (two at most). Rescued jobs queue
/// behind the others, so the attempts spread evenly: about 1 + 2 × kills / connections each
/// (4 to 6 here), below a refresh's eight.
const CONNECTIONS: usize = 10;
const SEED: u64 = 42;

/// A transaction as compared: FITID, posting time, amount (normalised), pending.
type Row = (String, DateTime<Utc>, Decimal, bool);

/// The sandbox bank with its clock stopped at `now`, on a free port.
async fn still_bank(now: DateTime<Utc>) -> (String, Arc<SandboxBank>) {
    // Latency keeps a request at the bank long enough to be killed mid-exchange.
    let config = SandboxConfig { latency: Duration::from_millis(150), seed: SEED, ..SandboxConfig::default() };
    let bank = Arc::new(SandboxBank::new(config, Clock::Manual(ManualClock::new(now))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = feedwatch::http::sandbox_bank::router(bank.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), bank)
}

/// Starts a worker process of `workers` slots armed at `point` (one or several, comma-separated;
/// if any) and returns it with its stderr lines. Its stdin is a pipe kept open: a `hold_at` point
/// waits there until the test writes a line.
async fn worker(
    app: &TestApp,
    bank_url: &str,
    point: Option<&str>,
    workers: &str,
) -> (tokio::process::Child, tokio::io::Lines<BufReader<tokio::process::ChildStderr>>) {
    let keys = secrecy::ExposeSecret::expose_secret(&crate::support::sealer_config()).to_owned();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"));
    command
        .args(["worker", "--workers", workers, "--worker-prefetch", "0", "--worker-lease", "60s"])
        .env("DATABASE_URL", &app.database_url)
        .env("FEEDWATCH_CREDENTIALS_KEYS", keys)
        .env("FEEDWATCH_SANDBOX_URL", bank_url)
        .env("RUST_LOG", "warn")
        .env_remove(fault::ENV)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(point) = point {
        command.env(fault::ENV, point);
    }
    let mut child = command.spawn().unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines)
}

/// Waits for the worker to announce `point`.
async fn reached(lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStderr>>, point: &str) {
    let wanted = format!("{}{point}", fault::ANNOUNCEMENT);
    let found = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.trim() == wanted {
                return;
            }
        }
        panic!("the worker exited before {point}");
    });
    found.await.unwrap_or_else(|_| panic!("the worker never reached {point}"));
}

/// What the rescuer does once the killed worker's leases expire, done now.
async fn rescue(app: &TestApp) {
    sqlx::query("update job set lease_expires_at = now() - interval '1 second' where state = 'running'")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let due_at_once = Backoff { base: Duration::ZERO, cap: Duration::ZERO };
    feedwatch::jobs::store::rescue_expired(&mut conn, &Backoffs::uniform(due_at_once), 1000).await.unwrap();
}

/// The bank's ledger for `user`'s accounts over the window a first refresh at `first` asked for.
fn ledger_rows(user: &str, first: DateTime<Utc>, now: DateTime<Utc>) -> BTreeMap<String, Vec<Row>> {
    // The first refresh asked from midnight of the day 90 days before it (`refresh::window_start`
    // owns that rule). Computed here to the millisecond, the ledger lost whatever the bank had
    // posted between that midnight and the test's time of day, 90 days back: the test failed or
    // passed by the hour it ran.
    let from = feedwatch::refresh::window_start(None, first);
    ledger::accounts(SEED, "healthy", user)
        .iter()
        .map(|account| {
            let book = ledger::book_between(SEED, "healthy", user, account, now, from, now);
            let mut rows: Vec<Row> = book
                .transactions
                .into_iter()
                .map(|shown| (shown.fitid, shown.posted, shown.amount.normalize(), shown.pending))
                .collect();
            rows.sort();
            (account.id.clone(), rows)
        })
        .collect()
}

/// The connection's stored (not removed) transactions by the bank's account id.
async fn stored_rows(app: &TestApp, connection: Uuid) -> BTreeMap<String, Vec<Row>> {
    let rows: Vec<(String, String, DateTime<Utc>, Decimal, bool)> = sqlx::query_as(
        "select a.bank_account_id, t.fitid, t.posted_at, t.amount, t.pending
           from feed_transaction t join account a on a.id = t.account_id
          where t.connection_id = $1 and not t.removed",
    )
    .bind(connection)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut stored: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for (account, fitid, posted, amount, pending) in rows {
        stored.entry(account).or_default().push((fitid, posted, amount.normalize(), pending));
    }
    stored.values_mut().for_each(|rows| rows.sort());
    stored
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_anywhere_in_a_refresh_lose_and_double_nothing_against_the_banks_ledger() {
    let started = Instant::now();
    let app = TestApp::spawn().await;
    let bank_now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let (bank_url, bank) = still_bank(bank_now).await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let institution = app.sandbox_institution("healthy").await;
    // A user of its own per connection: each has its own accounts and ledger, so a mix-up
    // between connections shows too.
    let mut connections = Vec::new();
    for n in 0..CONNECTIONS {
        let user = format!("kill-user-{n}");
        let id = connect(&app, &tenant, institution, &format!("Killed {n}"), &user).await;
        connections.push((id, user));
    }

    let mut kills = 0;
    for round in 0..ROUNDS {
        for kill in KILLS {
            // Every connection has a refresh waiting, so each worker has work to be killed in.
            for (id, _) in &connections {
                let response = app
                    .anonymous(Method::POST, &format!("/v1/connections/{id}/refresh"))
                    .bearer_auth(&tenant)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 202, "round {round}, {kill:?}");
            }
            let point = match kill {
                Kill::At(point) => Some(point),
                Kill::MidExchange => None,
            };
            let asked_before = bank.exchanges();
            let (mut child, mut lines) = worker(&app, &bank_url, point, "2").await;
            match kill {
                Kill::At(point) => reached(&mut lines, point).await,
                Kill::MidExchange => tokio::time::timeout(Duration::from_secs(20), bank.received(asked_before + 1))
                    .await
                    .expect("the worker never asked the bank"),
            }
            child.kill().await.unwrap();
            kills += 1;
            rescue(&app).await;
        }
    }
    assert_eq!(kills, ROUNDS * KILLS.len());

    // A worker that is not killed finishes what the killed ones left.
    let pool = app.refresh_pool_with(&bank_url, feedwatch::incident::Rules::default());
    pool.run_until_idle().await;

    let states: Vec<(String, i64)> = sqlx::query_as("select state, count(*) from job group by state order by state")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let unfinished: Vec<_> =
        states.iter().filter(|(state, _)| !["succeeded", "cancelled"].contains(&state.as_str())).collect();
    assert!(unfinished.is_empty(), "every job was rescued and completed: {states:?}");
    for (id, user) in &connections {
        let latest: String = scalar_of(
            &app,
            "select state from job where connection_id = $1 and state <> 'cancelled' order by job_id desc limit 1",
            *id,
        )
        .await;
        assert_eq!(latest, "succeeded", "the latest refresh of {id} succeeded");
        let first: DateTime<Utc> =
            scalar_of(&app, "select min(occurred_at) from refresh_outcome where connection_id = $1 and succeeded", *id)
                .await;
        let expected = ledger_rows(user, first, bank_now);
        let stored = stored_rows(&app, *id).await;
        assert!(
            expected.values().map(Vec::len).sum::<usize>() > 30,
            "the ledger holds enough to lose some: {expected:?}"
        );
        assert_eq!(stored, expected, "connection {id} holds exactly the bank's ledger");
        let state: String = scalar_of(&app, "select state from connection where id = $1", *id).await;
        assert_eq!(state, "healthy");
    }
    let attempts: Vec<i32> =
        sqlx::query_scalar("select attempt from job order by job_id").fetch_all(&app.pool).await.unwrap();
    let most_attempts = attempts.iter().max().copied().unwrap_or_default();
    eprintln!("attempts per job: {attempts:?}");
    eprintln!(
        "{kills} kills at {} points; jobs {states:?}, at most {most_attempts} attempts; in {:?}",
        KILLS.len(),
        started.elapsed()
    );
}

/// What a connection's refreshes have left behind: its job (state, attempt), its outcome rows,
/// its success events, its last success and its stored transactions.
type Trace = ((String, i32), i64, i64, Option<DateTime<Utc>>, BTreeMap<String, Vec<Row>>);

async fn trace_of(app: &TestApp, connection: Uuid) -> Trace {
    let job: (String, i32) = sqlx::query_as("select state, attempt from job where connection_id = $1")
        .bind(connection)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let outcomes: i64 =
        scalar_of(app, "select count(*) from refresh_outcome where connection_id = $1", connection).await;
    let successes: i64 = scalar_of(
        app,
        "select count(*) from connection_event where connection_id = $1 and kind = 'refresh.succeeded'",
        connection,
    )
    .await;
    let last_success: Option<DateTime<Utc>> =
        scalar_of(app, "select last_success_at from connection where id = $1", connection).await;
    (job, outcomes, successes, last_success, stored_rows(app, connection).await)
}

/// The group commit's window: a refresh's result waits in its worker's writer while the job's
/// lease expires and another attempt refreshes the connection and commits; let go, the writer's
/// fence refuses the stale result, which changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_waiting_in_the_writer_is_refused_once_another_attempt_stored_the_refresh() {
    let app = TestApp::spawn().await;
    let bank_now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let (bank_url, _bank) = still_bank(bank_now).await;
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let institution = app.sandbox_institution("healthy").await;
    let user = "late-user";
    let id = connect(&app, &tenant, institution, "Late", user).await;

    let armed = format!("{FAULT_QUEUED},{FAULT_WRITTEN}");
    let (mut late, mut lines) = worker(&app, &bank_url, Some(&armed), "1").await;
    reached(&mut lines, FAULT_QUEUED).await;
    // The first attempt's result is in the writer. The process stalls (as a paused VM or a long
    // GC would) while its lease runs out and another worker takes the job and stores the
    // refresh. Stopped, it cannot be that other worker itself: having handed its result to the
    // writer, its one slot is free, so its next poll would claim the rescued job.
    signal("STOP", late.id().expect("the worker runs"));
    rescue(&app).await;
    app.refresh_pool_with(&bank_url, feedwatch::incident::Rules::default()).run_until_idle().await;
    signal("CONT", late.id().expect("the worker runs"));
    let stored_by_second = trace_of(&app, id).await;
    assert_eq!(stored_by_second.0, ("succeeded".to_owned(), 2), "the second attempt stored the refresh");
    assert_eq!((stored_by_second.1, stored_by_second.2), (1, 1), "one outcome, one success event");

    // The first attempt's writer goes on: its fence must refuse the stale result.
    let stdin = late.stdin.as_mut().unwrap();
    stdin.write_all(b"go\n").await.unwrap();
    stdin.flush().await.unwrap();
    reached(&mut lines, FAULT_WRITTEN).await;
    assert_eq!(trace_of(&app, id).await, stored_by_second, "the stale result changed nothing");
    let first: DateTime<Utc> =
        scalar_of(&app, "select min(occurred_at) from refresh_outcome where connection_id = $1 and succeeded", id)
            .await;
    assert_eq!(stored_by_second.4, ledger_rows(user, first, bank_now), "the connection holds exactly the ledger");
    late.kill().await.unwrap();
}

/// One value a query reads about one connection (or job) by its id.
async fn scalar_of<T>(app: &TestApp, sql: &'static str, id: Uuid) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send + Unpin,
{
    sqlx::query_scalar(sql).bind(id).fetch_one(&app.pool).await.unwrap()
}

/// A connection of `tenant` whose sandbox ledger is `user`'s (each user a ledger of its own).
async fn connect(app: &TestApp, tenant: &str, institution: Uuid, name: &str, user: &str) -> Uuid {
    let response = app
        .anonymous(Method::POST, "/v1/connections")
        .bearer_auth(tenant)
        .json(&serde_json::json!({ "institution_id": institution, "display_name": name,
                                  "credentials": { "user_id": user, "password": "pass_good" } }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    created["id"].as_str().unwrap().parse().unwrap()
}
