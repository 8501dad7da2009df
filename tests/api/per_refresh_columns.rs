//! Issue #17: a refresh's success is a HOT update of `connection` (one heap tuple, no index
//! entry), because no index names a column every refresh rewrites; the staleness sweep still
//! finds every connection without a recent success.

use chrono::{TimeDelta, Utc};
use feedwatch::connection::lifecycle::{self, Subject, Succeeded};
use serde_json::json;
use uuid::Uuid;

use crate::support::TestApp;

/// The columns a refresh's outcome rewrites (`connection::store::transitions`), which no index of
/// `connection` may name (ARCHITECTURE.md, "Per-refresh columns").
const PER_REFRESH: [&str; 7] =
    ["last_attempt_at", "last_success_at", "data_as_of", "failure_streak", "error_raw", "error_at", "updated_at"];

#[tokio::test]
async fn no_index_of_connection_names_a_column_every_refresh_rewrites() {
    let app = TestApp::spawn().await;
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "select c.relname::text, pg_get_indexdef(i.indexrelid) from pg_index i join pg_class c on c.oid = i.indexrelid
         where i.indrelid = 'connection'::regclass",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(indexes.len() >= 5, "{indexes:?}");
    for (name, definition) in &indexes {
        for column in PER_REFRESH {
            assert!(!definition.contains(column), "{name} names {column}: {definition}");
        }
    }
}

async fn synced_connection(app: &TestApp) -> Subject {
    let tenant_id = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant_id)).await;
    let institution_id = app.sandbox_institution("healthy").await;
    let connection = app.connection(&key, institution_id, "Feed", "pass_good").await;
    assert_eq!(app.refresh_pool().run_until_idle().await, 1);
    Subject { tenant_id, institution_id, connection_id: connection["id"].as_str().unwrap().parse().unwrap() }
}

#[tokio::test]
async fn a_repeat_success_updates_one_heap_tuple_and_no_index() {
    let app = TestApp::spawn().await;
    let subject = synced_connection(&app).await;
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    let detail = json!({ "counts": { "added": 0 } });
    let done = Succeeded {
        job_id: 0,
        at: Utc::now(),
        data_as_of: Some(Utc::now()),
        detail: &detail,
        added: 0,
        modified: 0,
        removed: 0,
        failure_streak: 0,
        refused_account: None,
    };
    lifecycle::refresh_succeeded(&mut tx, &subject, &done).await.unwrap();
    // This transaction's own counts, exact and at once (the cumulative view is flushed later).
    let (updated, hot): (i64, i64) = sqlx::query_as(
        "select pg_stat_get_xact_tuples_updated('connection'::regclass),
                pg_stat_get_xact_tuples_hot_updated('connection'::regclass)",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    assert_eq!((updated, hot), (1, 1), "the success updated {updated} connection rows, {hot} of them HOT");
}

#[tokio::test]
async fn the_staleness_sweep_marks_old_successes_and_moves_past_recent_ones() {
    let app = TestApp::spawn().await;
    let (recent, old) = (synced_connection(&app).await, synced_connection(&app).await);
    let now = Utc::now();
    // Both last swept long ago; only `old` has gone without a success since.
    sqlx::query("update connection set swept_success_at = $1 where id = any($2)")
        .bind(now - TimeDelta::days(10))
        .bind(vec![recent.connection_id, old.connection_id])
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("update connection set last_success_at = $1 where id = $2")
        .bind(now - TimeDelta::days(5))
        .bind(old.connection_id)
        .execute(&app.pool)
        .await
        .unwrap();
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    let changed = lifecycle::went_stale(&mut tx, now, TimeDelta::days(2)).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(changed, 1);
    let rows: Vec<(Uuid, bool, bool)> = sqlx::query_as(
        "select id, stale, swept_success_at = coalesce(last_success_at, created_at) from connection order by stale",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(rows, [(recent.connection_id, false, true), (old.connection_id, true, true)]);
}
