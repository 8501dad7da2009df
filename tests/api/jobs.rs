//! The job queue: transactional enqueue, coalescing, claims, leases, fencing, retries, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use feedwatch::jobs::backoff::{Backoff, Backoffs};
use feedwatch::jobs::worker::{HandlerFuture, JobHandler, PoolConfig, Registration, WorkerPool};
use feedwatch::jobs::{self, ClaimedJob, NewJob, Outcome, store};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::support::TestApp;

/// The test kind's retry policy (15 s doubling to 15 min).
const BACKOFF: Backoff = Backoff { base: Duration::from_secs(15), cap: Duration::from_secs(15 * 60) };
/// Rescued jobs are due at once, so a test can claim them again.
fn no_backoff() -> Backoffs {
    Backoffs::uniform(Backoff { base: Duration::ZERO, cap: Duration::ZERO })
}

struct FnHandler<F>(F);

impl<F> JobHandler for FnHandler<F>
where
    F: Fn(ClaimedJob) -> HandlerFuture + Send + Sync + 'static,
{
    fn handle(&self, job: ClaimedJob) -> HandlerFuture {
        (self.0)(job)
    }
}

fn job(key: Option<&str>) -> NewJob {
    NewJob {
        kind: "test",
        args: serde_json::json!({}),
        unique_key: key.map(str::to_owned),
        priority: 0,
        run_at: None,
        max_attempts: 3,
        connection_id: None,
        trigger: "test",
    }
}

async fn enqueue(pool: &PgPool, job: &NewJob) -> jobs::Enqueued {
    let mut tx = feedwatch::database::begin(pool).await.unwrap();
    let enqueued = jobs::enqueue(&mut tx, job).await.unwrap();
    tx.commit().await.unwrap();
    enqueued
}

async fn state_of(pool: &PgPool, id: i64) -> (String, i32) {
    sqlx::query_as("select state, attempt from job where job_id = $1").bind(id).fetch_one(pool).await.unwrap()
}

fn test_config(concurrency: usize) -> PoolConfig {
    let mut config = PoolConfig::new(concurrency);
    config.shutdown_grace = Duration::from_millis(200);
    config.poll_interval = Duration::from_millis(50);
    config
}

fn pool_with(pool: &PgPool, handler: impl Fn(ClaimedJob) -> HandlerFuture + Send + Sync + 'static) -> Arc<WorkerPool> {
    configured_pool(pool, test_config(4), handler)
}

fn configured_pool(
    pool: &PgPool,
    config: PoolConfig,
    handler: impl Fn(ClaimedJob) -> HandlerFuture + Send + Sync + 'static,
) -> Arc<WorkerPool> {
    let registration =
        Registration { handler: Arc::new(FnHandler(handler)), timeout: Duration::from_secs(30), backoff: BACKOFF };
    Arc::new(WorkerPool::new(pool.clone(), config).register("test", registration))
}

async fn count(pool: &PgPool, filter: &str) -> i64 {
    sqlx::query_scalar(&format!("select count(*) from job where {filter}")).fetch_one(pool).await.unwrap()
}

/// Tells a test when it is dropped: how a test sees that an abandoned run really stopped.
struct DropSignal(Arc<tokio::sync::Notify>);

impl Drop for DropSignal {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_job() {
    let app = TestApp::spawn().await;
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    jobs::enqueue(&mut tx, &job(None)).await.unwrap();
    tx.rollback().await.unwrap();
    let count: i64 = sqlx::query_scalar("select count(*) from job").fetch_one(&app.pool).await.unwrap();
    assert_eq!(count, 0);
}

#[tokio::test]
async fn a_second_trigger_merges_into_the_pending_job() {
    let app = TestApp::spawn().await;
    let first = enqueue(&app.pool, &job(Some("refresh:a"))).await;
    let mut sooner = job(Some("refresh:a"));
    sooner.priority = 5;
    let second = enqueue(&app.pool, &sooner).await;
    assert!(!first.coalesced);
    assert!(second.coalesced);
    assert_eq!(first.job_id, second.job_id);
    let priority: i16 = sqlx::query_scalar("select priority from job").fetch_one(&app.pool).await.unwrap();
    assert_eq!(priority, 5, "the higher priority wins");
    let other = enqueue(&app.pool, &job(Some("refresh:b"))).await;
    assert_ne!(other.job_id, first.job_id);
}

#[tokio::test]
async fn concurrent_claimers_never_receive_the_same_job() {
    let app = TestApp::spawn().await;
    for _ in 0..200 {
        enqueue(&app.pool, &job(None)).await;
    }
    let claimers = (0..8).map(|index| {
        let pool = app.pool.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store::claim(&pool, 7, Duration::from_secs(60), &format!("w{index}")).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|job| job.job_id));
            }
        })
    });
    let mut all = Vec::new();
    for claimer in claimers {
        all.extend(claimer.await.unwrap());
    }
    let total = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(total, 200);
    assert_eq!(all.len(), 200, "no job claimed twice");
}

#[tokio::test]
async fn a_key_is_not_claimed_again_while_its_job_runs() {
    let app = TestApp::spawn().await;
    let first = enqueue(&app.pool, &job(Some("refresh:x"))).await;
    let claimed = store::claim(&app.pool, 10, Duration::from_secs(60), "w").await.unwrap();
    assert_eq!(claimed.len(), 1);
    let second = enqueue(&app.pool, &job(Some("refresh:x"))).await;
    assert!(!second.coalesced, "a running job does not absorb a new trigger");
    assert!(
        store::claim(&app.pool, 10, Duration::from_secs(60), "w").await.unwrap().is_empty(),
        "one key, one run at a time"
    );
    assert!(store::complete_many(&app.pool, &[first.job_id], &[1], &[serde_json::json!({})]).await.unwrap().len() == 1);
    let next = store::claim(&app.pool, 10, Duration::from_secs(60), "w").await.unwrap();
    assert_eq!(next.iter().map(|job| job.job_id).collect::<Vec<_>>(), [second.job_id]);
}

#[tokio::test]
async fn an_expired_lease_is_rescued_and_a_stale_attempt_changes_nothing() {
    let app = TestApp::spawn().await;
    let enqueued = enqueue(&app.pool, &job(None)).await;
    let claimed = store::claim(&app.pool, 1, Duration::from_secs(60), "w").await.unwrap();
    assert_eq!(claimed[0].attempt, 1);
    sqlx::query("update job set lease_expires_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let rescued = store::rescue_expired(&mut conn, &no_backoff(), 100).await.unwrap();
    assert_eq!(rescued, 1);
    assert_eq!(state_of(&app.pool, enqueued.job_id).await, ("available".into(), 1));
    let errors: serde_json::Value = sqlx::query_scalar("select errors from job").fetch_one(&app.pool).await.unwrap();
    assert!(errors[0]["error"].as_str().unwrap().contains("lease expired"));

    let again = store::claim(&app.pool, 1, Duration::from_secs(60), "w").await.unwrap();
    assert_eq!(again[0].attempt, 2);
    let stale = store::complete_many(&app.pool, &[enqueued.job_id], &[1], &[serde_json::json!({})]).await.unwrap();
    assert!(stale.is_empty(), "the first attempt cannot complete the second");
    assert!(!store::fail(&app.pool, enqueued.job_id, 1, &serde_json::json!({}), None).await.unwrap());
    let kept = store::heartbeat_many(&app.pool, &[(enqueued.job_id, 1)], Duration::from_secs(60)).await.unwrap();
    assert!(kept.is_empty(), "a stale attempt keeps no lease");
    assert_eq!(state_of(&app.pool, enqueued.job_id).await, ("running".into(), 2));
}

#[tokio::test]
async fn the_rescuer_delays_each_kind_by_its_own_backoff() {
    let app = TestApp::spawn().await;
    let hourly = Backoff { base: Duration::from_secs(3600), cap: Duration::from_secs(3600) };
    let daily = Backoff { base: Duration::from_secs(86_400), cap: Duration::from_secs(86_400) };
    let slow = enqueue(&app.pool, &NewJob { kind: "slow", ..job(None) }).await;
    let other = enqueue(&app.pool, &job(None)).await;
    assert_eq!(store::claim(&app.pool, 2, Duration::from_secs(60), "w").await.unwrap().len(), 2);
    sqlx::query("update job set lease_expires_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
    let mut conn = app.pool.acquire().await.unwrap();
    let backoffs = Backoffs::uniform(hourly).with("slow", daily);
    assert_eq!(store::rescue_expired(&mut conn, &backoffs, 100).await.unwrap(), 2);
    let delay = |id: i64| {
        sqlx::query_scalar::<_, f64>("select extract(epoch from run_at - now())::float8 from job where job_id = $1")
            .bind(id)
            .fetch_one(&app.pool)
    };
    let (slow_delay, other_delay) = (delay(slow.job_id).await.unwrap(), delay(other.job_id).await.unwrap());
    assert!((43_000.0..=86_400.0).contains(&slow_delay), "the kind's own policy: {slow_delay}");
    assert!((1_700.0..=3_600.0).contains(&other_delay), "any other kind's policy: {other_delay}");
}

#[tokio::test]
async fn a_job_that_keeps_killing_its_worker_fails_after_its_attempts() {
    let app = TestApp::spawn().await;
    let enqueued = enqueue(&app.pool, &job(None)).await;
    let mut conn = app.pool.acquire().await.unwrap();
    for _ in 0..3 {
        assert_eq!(store::claim(&app.pool, 1, Duration::from_secs(60), "w").await.unwrap().len(), 1);
        sqlx::query("update job set lease_expires_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
        store::rescue_expired(&mut conn, &no_backoff(), 100).await.unwrap();
    }
    assert_eq!(state_of(&app.pool, enqueued.job_id).await, ("failed".into(), 3));
}

#[tokio::test]
async fn retries_follow_the_backoff_and_exhaustion_fails_the_job() {
    let app = TestApp::spawn().await;
    let enqueued = enqueue(&app.pool, &job(None)).await;
    let pool = pool_with(&app.pool, |_| {
        Box::pin(async { Outcome::Retry { error: "bank down".into(), after: None, result: None } })
    });
    assert_eq!(pool.run_until_idle().await, 1);
    let (state, attempt) = state_of(&app.pool, enqueued.job_id).await;
    assert_eq!((state.as_str(), attempt), ("available", 1));
    let delay: f64 = sqlx::query_scalar("select extract(epoch from run_at - updated_at)::float8 from job")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!((7.0..=15.5).contains(&delay), "first retry within 7.5..15 s, got {delay}");
    for _ in 0..2 {
        sqlx::query("update job set run_at = now()").execute(&app.pool).await.unwrap();
        pool.run_until_idle().await;
    }
    assert_eq!(state_of(&app.pool, enqueued.job_id).await, ("failed".into(), 3));
    let errors: serde_json::Value = sqlx::query_scalar("select errors from job").fetch_one(&app.pool).await.unwrap();
    assert_eq!(errors.as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn permanent_failures_are_not_retried_and_snoozes_spend_no_attempt() {
    let app = TestApp::spawn().await;
    let failing = enqueue(&app.pool, &job(Some("fail"))).await;
    let snoozing = enqueue(&app.pool, &job(Some("snooze"))).await;
    let pool = pool_with(&app.pool, |_| {
        Box::pin(async { Outcome::Fail { error: "credentials rejected".into(), result: None } })
    });
    // Only the failing job is due for this handler; the snoozing one is driven below.
    sqlx::query("update job set run_at = now() + interval '1 hour' where job_id = $1")
        .bind(snoozing.job_id)
        .execute(&app.pool)
        .await
        .unwrap();
    pool.run_until_idle().await;
    assert_eq!(state_of(&app.pool, failing.job_id).await, ("failed".into(), 1));

    sqlx::query("update job set run_at = now() where job_id = $1")
        .bind(snoozing.job_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let snoozer = pool_with(&app.pool, |_| {
        Box::pin(async { Outcome::Snooze { after: Duration::from_secs(600), reason: "maintenance".into() } })
    });
    for _ in 0..3 {
        snoozer.run_until_idle().await;
        sqlx::query("update job set run_at = now() where job_id = $1")
            .bind(snoozing.job_id)
            .execute(&app.pool)
            .await
            .unwrap();
    }
    assert_eq!(state_of(&app.pool, snoozing.job_id).await, ("available".into(), 0), "three snoozes, no attempt spent");
}

#[tokio::test]
async fn a_panicking_job_is_retried_not_lost() {
    let app = TestApp::spawn().await;
    let enqueued = enqueue(&app.pool, &job(None)).await;
    let pool = pool_with(&app.pool, |_| Box::pin(async { panic!("handler bug") }));
    pool.run_until_idle().await;
    assert_eq!(state_of(&app.pool, enqueued.job_id).await, ("available".into(), 1));
}

#[tokio::test]
async fn shutdown_hands_unfinished_jobs_back_without_spending_an_attempt() {
    let app = TestApp::spawn().await;
    let enqueued = enqueue(&app.pool, &job(None)).await;
    let started = Arc::new(tokio::sync::Notify::new());
    let signal = started.clone();
    let pool = pool_with(&app.pool, move |_| {
        let signal = signal.clone();
        Box::pin(async move {
            signal.notify_one();
            std::future::pending::<Outcome>().await
        })
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&pool).run(shutdown.clone()));
    started.notified().await;
    assert_eq!(state_of(&app.pool, enqueued.job_id).await.0, "running");
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(state_of(&app.pool, enqueued.job_id).await, ("available".into(), 0));
}

#[tokio::test]
async fn a_pool_holds_no_more_than_its_slots_and_prefetch_and_hands_buffered_jobs_back_unspent() {
    let app = TestApp::spawn().await;
    for _ in 0..10 {
        enqueue(&app.pool, &job(None)).await;
    }
    let ran = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Notify::new());
    let (counter, signal) = (ran.clone(), started.clone());
    let mut config = test_config(1);
    config.prefetch = 3;
    let pool = configured_pool(&app.pool, config, move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        signal.notify_one();
        Box::pin(std::future::pending::<Outcome>())
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&pool).run(shutdown.clone()));
    started.notified().await;
    assert_eq!(count(&app.pool, "state = 'running'").await, 4, "one running and three buffered, all leased");
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 1, "buffered jobs never started");
    assert_eq!(count(&app.pool, "state = 'available' and attempt = 0").await, 10, "every job back, no attempt spent");
}

/// A job that waits on shared work gives its slot back: with one slot, every job starts while
/// the earlier ones still wait, each is still held (running, leased) until it returns, and each
/// outcome is recorded when it does.
#[tokio::test]
async fn a_job_waiting_on_shared_work_gives_its_slot_back_and_is_still_held_and_recorded() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        enqueue(&app.pool, &job(None)).await;
    }
    let started = Arc::new(AtomicUsize::new(0));
    let all_started = Arc::new(tokio::sync::Notify::new());
    let commit = Arc::new(tokio::sync::Semaphore::new(0));
    let (counter, signal, gate) = (started.clone(), all_started.clone(), commit.clone());
    let pool = configured_pool(&app.pool, test_config(1), move |job| {
        let (counter, signal, gate) = (counter.clone(), signal.clone(), gate.clone());
        Box::pin(async move {
            job.slot.give_back();
            if counter.fetch_add(1, Ordering::SeqCst) + 1 == 3 {
                signal.notify_one();
            }
            let _committed = gate.acquire().await.unwrap();
            Outcome::Succeeded(serde_json::json!({ "job": job.job_id }))
        })
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&pool).run(shutdown.clone()));
    tokio::time::timeout(Duration::from_secs(20), all_started.notified())
        .await
        .expect("three jobs started on one slot, each after the one before gave it back");
    assert_eq!(count(&app.pool, "state = 'running'").await, 3, "all three still held while they wait");
    commit.add_permits(3);
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(count(&app.pool, "state = 'succeeded'").await, 3, "each recorded when it returned");
}

#[tokio::test]
async fn batched_heartbeats_completions_and_hand_backs_are_fenced_per_job() {
    let app = TestApp::spawn().await;
    let (held, stale) = (enqueue(&app.pool, &job(None)).await.job_id, enqueue(&app.pool, &job(None)).await.job_id);
    assert_eq!(store::claim(&app.pool, 2, Duration::from_secs(1), "w").await.unwrap().len(), 2);
    // Another worker took `stale` over (rescued and claimed again): its attempt moved on.
    sqlx::query("update job set attempt = 2 where job_id = $1").bind(stale).execute(&app.pool).await.unwrap();
    let leases = "select extract(epoch from lease_expires_at - now())::float8 from job where job_id = $1";
    let kept = store::heartbeat_many(&app.pool, &[(held, 1), (stale, 1)], Duration::from_secs(600)).await.unwrap();
    assert_eq!(kept, [held]);
    let lease: f64 = sqlx::query_scalar(leases).bind(held).fetch_one(&app.pool).await.unwrap();
    assert!(lease > 500.0, "the held lease was extended, {lease} s left");
    let lease: f64 = sqlx::query_scalar(leases).bind(stale).fetch_one(&app.pool).await.unwrap();
    assert!(lease < 2.0, "the stale attempt extended nothing, {lease} s left");

    let results = [serde_json::json!({ "n": 1 }), serde_json::json!({ "n": 2 })];
    let done = store::complete_many(&app.pool, &[held, stale], &[1, 1], &results).await.unwrap();
    assert_eq!(done, [held]);
    let result: serde_json::Value =
        sqlx::query_scalar("select result from job where job_id = $1").bind(held).fetch_one(&app.pool).await.unwrap();
    assert_eq!(result, serde_json::json!({ "n": 1 }), "each job gets its own result");
    assert_eq!(state_of(&app.pool, stale).await, ("running".into(), 2), "a stale completion changes nothing");

    let back = store::requeue_unspent_many(&app.pool, &[(held, 1), (stale, 1)], chrono::Utc::now()).await.unwrap();
    assert_eq!(back, 0, "neither attempt holds its job any more");
    let back = store::requeue_unspent_many(&app.pool, &[(stale, 2)], chrono::Utc::now()).await.unwrap();
    assert_eq!(back, 1);
    assert_eq!(state_of(&app.pool, stale).await, ("available".into(), 1));
    assert_eq!(state_of(&app.pool, held).await, ("succeeded".into(), 1));
}

#[tokio::test]
async fn a_heartbeat_that_finds_the_lease_lost_stops_the_run_and_records_nothing() {
    let app = TestApp::spawn().await;
    let enqueued = enqueue(&app.pool, &job(None)).await;
    let started = Arc::new(tokio::sync::Notify::new());
    let stopped = Arc::new(tokio::sync::Notify::new());
    let (on_start, on_stop) = (started.clone(), stopped.clone());
    let mut config = test_config(1);
    // A heartbeat every 100 ms.
    config.lease = Duration::from_millis(300);
    let pool = configured_pool(&app.pool, config, move |_| {
        let (on_start, guard) = (on_start.clone(), DropSignal(on_stop.clone()));
        Box::pin(async move {
            let _guard = guard;
            on_start.notify_one();
            std::future::pending::<Outcome>().await
        })
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&pool).run(shutdown.clone()));
    started.notified().await;
    sqlx::query("update job set attempt = attempt + 1, lease_expires_at = now() + interval '1 hour' where job_id = $1")
        .bind(enqueued.job_id)
        .execute(&app.pool)
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), stopped.notified())
        .await
        .expect("the next heartbeat sees the lease lost and stops the handler");
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(
        state_of(&app.pool, enqueued.job_id).await,
        ("running".into(), 2),
        "the new owner's attempt is untouched, even by the hand-back at shutdown"
    );
}

#[tokio::test]
async fn a_running_pool_runs_every_job_once_and_records_every_completion() {
    let app = TestApp::spawn().await;
    let ran = Arc::new(AtomicUsize::new(0));
    let all_ran = Arc::new(tokio::sync::Notify::new());
    let (counter, signal) = (ran.clone(), all_ran.clone());
    let pool = pool_with(&app.pool, move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) + 1 == 50 {
            signal.notify_one();
        }
        Box::pin(async { Outcome::Succeeded(serde_json::json!({ "ok": true })) })
    });
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&pool).run(shutdown.clone()));
    for _ in 0..50 {
        enqueue(&app.pool, &job(None)).await;
    }
    all_ran.notified().await;
    // Shutdown waits for in-flight jobs and flushes the batched completions.
    shutdown.cancel();
    running.await.unwrap();
    assert_eq!(ran.load(Ordering::SeqCst), 50, "each job ran once");
    let succeeded: i64 =
        sqlx::query_scalar("select count(*) from job where state = 'succeeded'").fetch_one(&app.pool).await.unwrap();
    assert_eq!(succeeded, 50);
}

/// Counts the pool's reports of itself, so a test can wait for one instead of sleeping.
struct Announcements(tokio::sync::Notify);

impl feedwatch::jobs::worker::PoolObserver for Announcements {
    fn announced(&self) {
        self.0.notify_one();
    }
}

#[tokio::test]
async fn the_queue_lists_live_workers_busy_or_idle_and_forgets_them_when_they_stop() {
    let app = TestApp::spawn().await;
    let announcements = Arc::new(Announcements(tokio::sync::Notify::new()));
    let started = Arc::new(tokio::sync::Notify::new());
    let signal = started.clone();
    let mut config = test_config(3);
    // Reports every third of the lease (1 s), and a report is listed for a whole lease: long
    // enough that a slow machine cannot make the listing miss a pool that is running.
    config.lease = Duration::from_secs(3);
    let registration = Registration {
        handler: Arc::new(FnHandler(move |_| -> HandlerFuture {
            signal.notify_one();
            Box::pin(std::future::pending::<Outcome>())
        })),
        timeout: Duration::from_secs(30),
        backoff: BACKOFF,
    };
    let pool = Arc::new(
        WorkerPool::new(app.pool.clone(), config.clone()).register("test", registration).observe(announcements.clone()),
    );
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&pool).run(shutdown.clone()));
    announcements.0.notified().await;

    let queue = |app: &TestApp| {
        let request = app.admin(reqwest::Method::GET, "/v1/queue");
        async move { request.send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    let idle = queue(&app).await;
    let workers = idle["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 1, "an idle pool is listed: {idle}");
    assert_eq!(workers[0]["id"], config.worker_id.as_str());
    assert_eq!(workers[0]["kinds"], serde_json::json!(["test"]));
    assert_eq!(workers[0]["concurrency"], 3);
    assert_eq!(workers[0]["running"], 0);

    enqueue(&app.pool, &job(None)).await;
    started.notified().await;
    // A report made before the job started may still be pending: wait for one that counts it.
    let busy = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            announcements.0.notified().await;
            let busy = queue(&app).await;
            if busy["workers"][0]["running"] == 1 {
                return busy;
            }
        }
    })
    .await
    .expect("a report counted the running job");
    assert!(busy["workers"][0]["last_seen_at"].as_str() > idle["workers"][0]["last_seen_at"].as_str());

    shutdown.cancel();
    running.await.unwrap();
    let stopped = queue(&app).await;
    assert_eq!(stopped["workers"], serde_json::json!([]), "a pool that stopped cleanly is gone at once");

    // A worker that was killed is no longer listed once its lease passes, and its row is
    // pruned a day later.
    sqlx::query(
        "insert into worker (id, kinds, concurrency, running, started_at, last_seen_at, expires_at)
         values ('gone/1', '{test}', 4, 2, now() - interval '3 days', now() - interval '2 days',
                 now() - interval '2 days'),
                ('late/2', '{test}', 4, 2, now() - interval '1 hour', now() - interval '2 minutes',
                 now() - interval '1 minute')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(queue(&app).await["workers"], serde_json::json!([]));
    feedwatch::jobs::maintenance::run_once(&app.pool, &feedwatch::jobs::maintenance::MaintenanceConfig::default())
        .await
        .unwrap();
    let left: Vec<String> = sqlx::query_scalar("select id from worker").fetch_all(&app.pool).await.unwrap();
    assert_eq!(left, ["late/2"]);
}
