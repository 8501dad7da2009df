//! Purging a connection while a refresh of it is writing: the purge waits for the refresh to
//! commit and then deletes, instead of deadlocking with it (the soak saw PostgreSQL break such a
//! deadlock by failing the purge with a 500).

use std::time::Duration;

use reqwest::Method;

use crate::reliability::within;
use crate::support::TestApp;

#[tokio::test]
async fn a_purge_waits_for_a_refresh_that_is_writing_and_then_deletes() {
    let app = TestApp::spawn().await;
    let fed = app.fed_account().await;
    let job_id: i64 = sqlx::query_scalar("select job_id from job where connection_id = $1 order by job_id limit 1")
        .bind(fed.connection)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    // A refresh's write transaction, as its fence takes it: the job row, then the feed lock.
    let mut refresh = feedwatch::database::begin(&app.pool).await.unwrap();
    sqlx::query("select job_id from job where job_id = $1 for update")
        .bind(job_id)
        .execute(&mut *refresh)
        .await
        .unwrap();
    feedwatch::feed::store::lock_connection(&mut *refresh, fed.connection).await.unwrap();

    let purge = {
        let request = app.admin(Method::DELETE, &format!("/v1/connections/{}?purge=true", fed.connection));
        tokio::spawn(async move { request.send().await.unwrap() })
    };
    within(Duration::from_secs(10), "the purge waits on a lock", || async {
        let waiting: i64 = sqlx::query_scalar(
            "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and pid <> pg_backend_pid()",
        )
        .fetch_one(&app.pool)
        .await
        .unwrap();
        waiting > 0
    })
    .await;

    // The refresh goes on writing the connection's rows: each needs the connection row, which
    // a purge that deleted before waiting would hold while it waited on the job row.
    let listed = crate::support::reported_account("second", feedwatch::connection::AccountKind::Savings, "Savings");
    feedwatch::connection::store::upsert_account(&mut *refresh, fed.connection, &listed).await.unwrap();
    refresh.commit().await.unwrap();

    let answered = purge.await.unwrap();
    assert_eq!(answered.status(), 204, "{}", answered.text().await.unwrap());
    let left: i64 = sqlx::query_scalar("select count(*) from account where connection_id = $1")
        .bind(fed.connection)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the purge took the refresh's account with it");
}
