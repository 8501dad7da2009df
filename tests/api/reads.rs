//! `database::reads`: connections kept between reads, on a real PostgreSQL. Which reads may keep
//! their connection, and that one kept too long, broken or half-read never serves another read.

use std::time::Duration;

use feedwatch::database::reads::Reads;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::task::JoinSet;

use crate::reliability::within;

/// Long enough that no test here meets it by chance, however slow the machine.
const LONG: Duration = Duration::from_secs(60);

/// A fresh database's pool of `max` connections, and reads over it keeping for `kept_for`.
async fn reads_over(max: u32, kept_for: Duration) -> (Reads, PgPool) {
    let (connect, _, _) = crate::support::fresh_database().await;
    let pool =
        PgPoolOptions::new().max_connections(max).acquire_timeout(Duration::from_secs(5)).connect_lazy_with(connect);
    (Reads::keeping_for(pool.clone(), kept_for), pool)
}

async fn backend(reads: &Reads) -> i32 {
    sqlx::query_scalar("select pg_backend_pid()").fetch_one(reads).await.unwrap()
}

#[tokio::test]
async fn a_clean_read_lends_its_connection_to_the_next_read_without_the_pool() {
    let (reads, pool) = reads_over(4, LONG).await;
    let first = backend(&reads).await;
    assert_eq!((reads.kept(), pool.size(), pool.num_idle()), (1, 1, 0), "kept here, not back in the pool");
    assert_eq!(backend(&reads).await, first, "the next read runs on the kept connection");
    // Every kind of statement the store runs: rows collected, one row, a command.
    let rows: Vec<i32> = sqlx::query_scalar("select generate_series(1, 1000)").fetch_all(&reads).await.unwrap();
    assert_eq!(rows, (1..=1000).collect::<Vec<_>>());
    let none: Option<i32> = sqlx::query_scalar("select 1 where false").fetch_optional(&reads).await.unwrap();
    assert_eq!(none, None);
    let done = sqlx::query("set application_name = 'reads test'").execute(&reads).await.unwrap();
    assert_eq!(done.rows_affected(), 0);
    assert_eq!(backend(&reads).await, first);
    assert_eq!(pool.size(), 1, "one connection served every read");
}

#[tokio::test]
async fn a_read_whose_caller_stopped_waiting_is_not_kept() {
    let (reads, _pool) = reads_over(4, LONG).await;
    let first = backend(&reads).await;
    let cut_short =
        tokio::time::timeout(Duration::from_millis(100), sqlx::query("select pg_sleep(10)").execute(&reads)).await;
    assert!(cut_short.is_err(), "the statement outlives the caller's wait");
    assert_eq!(reads.kept(), 0, "a connection left mid-answer goes back to the pool, which pings it");
    // The next read does not wait for the abandoned statement's answer on its connection.
    let answer =
        tokio::time::timeout(Duration::from_secs(5), sqlx::query_scalar::<_, i32>("select 7").fetch_one(&reads))
            .await
            .expect("the next read is answered at once")
            .unwrap();
    assert_eq!(answer, 7);
    assert_ne!(backend(&reads).await, first, "it ran on another connection");
}

#[tokio::test]
async fn a_failed_statement_is_not_kept_and_the_next_read_works() {
    let (reads, _pool) = reads_over(4, LONG).await;
    let error = sqlx::query("select 1 / 0").execute(&reads).await.unwrap_err();
    assert_eq!(error.as_database_error().and_then(|error| error.code()).as_deref(), Some("22012"));
    assert_eq!(reads.kept(), 0);
    let answer: i32 = sqlx::query_scalar("select 7").fetch_one(&reads).await.unwrap();
    assert_eq!((answer, reads.kept()), (7, 1));
}

#[tokio::test]
async fn a_kept_connection_the_server_ended_fails_one_read_as_unavailable_and_is_not_kept() {
    let (reads, _pool) = reads_over(4, LONG).await;
    let first = backend(&reads).await;
    let admin = PgPoolOptions::new().max_connections(1).connect_with(crate::support::maintenance()).await.unwrap();
    let ended: bool =
        sqlx::query_scalar("select pg_terminate_backend($1)").bind(first).fetch_one(&admin).await.unwrap();
    assert!(ended);
    within(Duration::from_secs(10), "the backend exits", || {
        let admin = &admin;
        async move {
            let alive: bool = sqlx::query_scalar("select exists (select from pg_stat_activity where pid = $1)")
                .bind(first)
                .fetch_one(admin)
                .await
                .unwrap();
            !alive
        }
    })
    .await;
    let error = sqlx::query("select 1").execute(&reads).await.unwrap_err();
    assert!(feedwatch::database::is_unavailable(&error), "a 503, not a 500: {error:?}");
    assert_eq!(reads.kept(), 0);
    assert_ne!(backend(&reads).await, first, "the read after it gets a live connection");
}

#[tokio::test]
async fn an_idle_services_kept_connections_go_back_to_the_pool() {
    let (reads, pool) = reads_over(4, Duration::from_millis(50)).await;
    backend(&reads).await;
    within(Duration::from_secs(10), "the sweep gives the connection back", || {
        let (reads, pool) = (&reads, &pool);
        async move { reads.kept() == 0 && pool.num_idle() == 1 }
    })
    .await;
    // The pool can close: it waits for every lent connection, and none is lent any more.
    tokio::time::timeout(Duration::from_secs(5), pool.close()).await.expect("the pool closes");
}

#[tokio::test]
async fn many_reads_at_once_on_a_small_pool_all_finish_with_their_own_answers() {
    // One connection may be kept, two exist: the reads that find none kept wait on the pool,
    // which the other connection keeps serving; no read gets another's answer.
    let (reads, pool) = reads_over(2, LONG).await;
    let mut running = JoinSet::new();
    for asked in 0..300 {
        let reads = reads.clone();
        running.spawn(async move {
            let answer: i32 = sqlx::query_scalar("select $1::int").bind(asked).fetch_one(&reads).await.unwrap();
            (asked, answer)
        });
    }
    while let Some(finished) = running.join_next().await {
        let (asked, answer) = finished.unwrap();
        assert_eq!(answer, asked);
    }
    assert!(pool.size() <= 2 && reads.kept() <= 1, "never more than the pool, half of it kept");
}
