//! The job queue: transactional enqueue, coalescing, claims, leases, fencing, retries, shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use feedwatch::jobs::backoff::Backoff;
use feedwatch::jobs::worker::{HandlerFuture, JobHandler, PoolConfig, Registration, WorkerPool};
use feedwatch::jobs::{self, ClaimedJob, NewJob, Outcome, store};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use crate::support::TestApp;

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
    let mut tx = pool.begin().await.unwrap();
    let enqueued = jobs::enqueue(&mut tx, job).await.unwrap();
    tx.commit().await.unwrap();
    enqueued
}

async fn state_of(pool: &PgPool, id: i64) -> (String, i32) {
    sqlx::query_as("select state, attempt from job where job_id = $1").bind(id).fetch_one(pool).await.unwrap()
}

fn pool_with(pool: &PgPool, handler: impl Fn(ClaimedJob) -> HandlerFuture + Send + Sync + 'static) -> Arc<WorkerPool> {
    let registration = Registration {
        handler: Arc::new(FnHandler(handler)),
        timeout: Duration::from_secs(30),
        backoff: Backoff::REFRESH,
    };
    let mut config = PoolConfig::new(4);
    config.shutdown_grace = Duration::from_millis(200);
    config.poll_interval = Duration::from_millis(50);
    Arc::new(WorkerPool::new(pool.clone(), config).register("test", registration))
}

#[tokio::test]
async fn a_rolled_back_transaction_leaves_no_job() {
    let app = TestApp::spawn().await;
    let mut tx = app.pool.begin().await.unwrap();
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
    let rescued = store::rescue_expired(&mut conn, Duration::ZERO, Duration::ZERO, 100).await.unwrap();
    assert_eq!(rescued, 1);
    assert_eq!(state_of(&app.pool, enqueued.job_id).await, ("available".into(), 1));
    let errors: serde_json::Value = sqlx::query_scalar("select errors from job").fetch_one(&app.pool).await.unwrap();
    assert!(errors[0]["error"].as_str().unwrap().contains("lease expired"));

    let again = store::claim(&app.pool, 1, Duration::from_secs(60), "w").await.unwrap();
    assert_eq!(again[0].attempt, 2);
    let stale = store::complete_many(&app.pool, &[enqueued.job_id], &[1], &[serde_json::json!({})]).await.unwrap();
    assert!(stale.is_empty(), "the first attempt cannot complete the second");
    assert!(!store::fail(&app.pool, enqueued.job_id, 1, &serde_json::json!({}), None).await.unwrap());
    assert!(!store::heartbeat(&app.pool, enqueued.job_id, 1, Duration::from_secs(60)).await.unwrap());
    assert_eq!(state_of(&app.pool, enqueued.job_id).await, ("running".into(), 2));
}

#[tokio::test]
async fn a_job_that_keeps_killing_its_worker_fails_after_its_attempts() {
    let app = TestApp::spawn().await;
    let enqueued = enqueue(&app.pool, &job(None)).await;
    let mut conn = app.pool.acquire().await.unwrap();
    for _ in 0..3 {
        assert_eq!(store::claim(&app.pool, 1, Duration::from_secs(60), "w").await.unwrap().len(), 1);
        sqlx::query("update job set lease_expires_at = now() - interval '1 second'").execute(&app.pool).await.unwrap();
        store::rescue_expired(&mut conn, Duration::ZERO, Duration::ZERO, 100).await.unwrap();
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
