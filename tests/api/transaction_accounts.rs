//! A stored transaction belongs to an existing account of its own connection. Migration 0026
//! checks that once per statement instead of with a foreign key row by row (issue #17); these
//! tests hold it to everything the foreign key guaranteed, the races with a purge included.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::reliability::within;
use crate::support::{FedAccount, TestApp, reported_transaction};

fn window() -> DateTime<Utc> {
    DateTime::from_timestamp(1_759_000_000, 0).unwrap()
}

/// One row inserted by hand, as neither the writer nor an import would: nothing else in the
/// statement or its transaction touches the account or the connection.
async fn insert_raw(executor: impl sqlx::PgExecutor<'_>, account: Uuid, connection: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into feed_transaction (id, account_id, connection_id, fitid, posted_at, amount, created_seq, change_seq)
         values (gen_random_uuid(), $1, $2, 'raw', now(), 1, nextval('feed_change_seq'), nextval('feed_change_seq'))",
    )
    .bind(account)
    .bind(connection)
    .execute(executor)
    .await
    .map(drop)
}

fn foreign_key_violation(result: Result<(), sqlx::Error>) -> String {
    let error = result.expect_err("the insert is refused");
    let database = error.as_database_error().expect("a database error");
    assert_eq!(database.code().as_deref(), Some("23503"), "{database}");
    database.message().to_owned()
}

async fn transactions_of(pool: &sqlx::PgPool, connection: Uuid) -> i64 {
    sqlx::query_scalar("select count(*) from feed_transaction where connection_id = $1")
        .bind(connection)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn someone_waits_on_a_lock(pool: &sqlx::PgPool) -> bool {
    let waiting: i64 = sqlx::query_scalar(
        "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and pid <> pg_backend_pid()",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    waiting > 0
}

#[tokio::test]
async fn a_transaction_of_an_unknown_account_or_of_another_connection_is_refused() {
    let app = TestApp::spawn().await;
    let first = app.fed_account().await;
    let second = app.fed_account().await;

    let message = foreign_key_violation(insert_raw(&app.pool, Uuid::new_v4(), first.connection).await);
    assert!(message.contains("does not exist"), "{message}");
    foreign_key_violation(insert_raw(&app.pool, first.account, second.connection).await);
    assert_eq!(transactions_of(&app.pool, first.connection).await, 0);
    assert_eq!(transactions_of(&app.pool, second.connection).await, 0);

    insert_raw(&app.pool, first.account, first.connection).await.expect("its own account is accepted");
    assert_eq!(transactions_of(&app.pool, first.connection).await, 1);
}

#[tokio::test]
async fn the_keys_that_tie_a_transaction_to_its_account_do_not_change() {
    let app = TestApp::spawn().await;
    let first = app.fed_account().await;
    let second = app.fed_account().await;
    insert_raw(&app.pool, first.account, first.connection).await.unwrap();

    let update = |sql: &'static str, a: Uuid, b: Uuid| {
        let pool = app.pool.clone();
        async move { sqlx::query(sql).bind(a).bind(b).execute(&pool).await.map(drop) }
    };
    let moving = "update feed_transaction set account_id = $1, connection_id = $2";
    foreign_key_violation(update(moving, second.account, second.connection).await);
    let moving = "update account set connection_id = $1 where id = $2";
    foreign_key_violation(update(moving, second.connection, first.account).await);
    // An update that leaves the keys as they were is an ordinary update.
    sqlx::query("update feed_transaction set memo = 'kept', account_id = account_id")
        .execute(&app.pool)
        .await
        .expect("the same keys are no change");
}

#[tokio::test]
async fn deleting_a_connection_deletes_its_transactions_and_no_others() {
    let app = TestApp::spawn().await;
    let gone = app.fed_account().await;
    let kept = app.fed_account().await;
    for fed in [&gone, &kept] {
        let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
        let rows = [
            reported_transaction("a", 0, "-12.34"),
            reported_transaction("b", 0, "-12.34"),
            reported_transaction("c", 0, "-12.34"),
        ];
        crate::support::apply_statement(&mut tx, fed.connection, &[(fed.account, &rows[..])], window()).await;
        tx.commit().await.unwrap();
    }
    sqlx::query("delete from connection where id = $1").bind(gone.connection).execute(&app.pool).await.unwrap();
    assert_eq!(transactions_of(&app.pool, gone.connection).await, 0);
    assert_eq!(transactions_of(&app.pool, kept.connection).await, 3);
}

/// Rows are stored, then a purge of the connection arrives before their transaction commits:
/// the purge waits, and then takes the committed rows with it. (The writer's transaction also
/// records a digest tied to the connection, which would make the purge wait too: the rows here
/// are inserted alone, so only the account's lock can hold the purge.)
#[tokio::test]
async fn a_purge_after_an_uncommitted_insert_waits_and_deletes_its_rows() {
    let app = TestApp::spawn().await;
    let FedAccount { connection, account, .. } = app.fed_account().await;
    let mut writer = feedwatch::database::begin(&app.pool).await.unwrap();
    insert_raw(&mut *writer, account, connection).await.unwrap();

    let purge = {
        let pool = app.pool.clone();
        tokio::spawn(async move {
            sqlx::query("delete from connection where id = $1").bind(connection).execute(&pool).await.unwrap()
        })
    };
    within(Duration::from_secs(10), "the purge waits for the writer", || someone_waits_on_a_lock(&app.pool)).await;
    writer.commit().await.unwrap();
    assert_eq!(purge.await.unwrap().rows_affected(), 1);
    assert_eq!(transactions_of(&app.pool, connection).await, 0, "no row outlives its account");
}

/// A purge deletes the account first and has not committed when the writer inserts: the insert
/// waits, and fails once the purge commits.
#[tokio::test]
async fn an_insert_after_an_uncommitted_purge_waits_and_is_refused() {
    let app = TestApp::spawn().await;
    let FedAccount { connection, account, .. } = app.fed_account().await;
    let mut purge = feedwatch::database::begin(&app.pool).await.unwrap();
    sqlx::query("delete from connection where id = $1").bind(connection).execute(&mut *purge).await.unwrap();

    let insert = {
        let pool = app.pool.clone();
        tokio::spawn(async move { insert_raw(&pool, account, connection).await })
    };
    within(Duration::from_secs(10), "the insert waits for the purge", || someone_waits_on_a_lock(&app.pool)).await;
    purge.commit().await.unwrap();
    foreign_key_violation(insert.await.unwrap());
    assert_eq!(transactions_of(&app.pool, connection).await, 0);
}
