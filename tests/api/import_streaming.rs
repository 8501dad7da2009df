//! Statement imports of large files: the upload is spooled to a file rather than held, the
//! readers stream, and imports run under their own time limit.

use std::time::Duration;

use reqwest::Method;

use crate::imports::{connected, first_account, post_file, sgml};
use crate::support::{Options, TestApp, assert_problem};

/// Waits (by asking PostgreSQL, not by sleeping) until some session waits for a lock on `table`.
async fn until_blocked_on(app: &TestApp, table: &str) {
    let query = "select count(*) from pg_locks where not granted and relation = $1::regclass";
    loop {
        let waiting: i64 = sqlx::query_scalar(query).bind(table).fetch_one(&app.pool).await.unwrap();
        if waiting > 0 {
            return;
        }
        tokio::task::yield_now().await;
    }
}

/// An import held up past the general request timeout is not cut by it (another route is, in
/// the same while), and is cut at the import time limit, its work rolled back.
#[tokio::test]
async fn imports_run_under_their_own_time_limit() {
    let options = Options {
        request_timeout: Duration::from_millis(300),
        import_timeout: Duration::from_secs(3),
        ..Options::default()
    };
    let app = TestApp::spawn_with(options).await;
    let (tenant, id) = connected(&app).await;
    let (account, _) = first_account(&app, &tenant, &id).await;
    let file = sgml(account["bank_account_id"].as_str().unwrap(), &[("SLOW-1", "20200105", "-1.25", "SLOW IMPORT")]);

    // The import's write into `statement_import` waits for this lock; readiness waits for the other.
    let mut blocker = feedwatch::database::begin(&app.pool).await.unwrap();
    sqlx::query("lock table statement_import in access exclusive mode").execute(&mut *blocker).await.unwrap();
    sqlx::query("lock table _sqlx_migrations in access exclusive mode").execute(&mut *blocker).await.unwrap();
    let import = tokio::spawn({
        let (client, url, key, body) =
            (app.client.clone(), app.url(&format!("/v1/connections/{id}/imports")), tenant.clone(), file.clone());
        async move { client.post(url).bearer_auth(key).body(body).send().await.unwrap() }
    });
    until_blocked_on(&app, "statement_import").await;
    let other = app.anonymous(Method::GET, "/readyz").send().await.unwrap();
    assert_problem(other, 503, "request_timeout").await;
    assert!(!import.is_finished(), "the import, blocked as long as readiness was, still runs");

    let cut = import.await.unwrap();
    assert_problem(cut, 503, "request_timeout").await;
    blocker.rollback().await.unwrap();
    let stored: i64 = sqlx::query_scalar("select count(*) from statement_import").fetch_one(&app.pool).await.unwrap();
    assert_eq!(stored, 0, "the import cut at its limit left nothing");

    let response = post_file(&app, &tenant, &id, file).await;
    assert_eq!(response.status(), 201);
}
