//! What a refresh writes (issue #17): its success is a HOT update of `connection` (one heap
//! tuple, no index entry), because no index names a column every refresh rewrites, and the
//! staleness sweep still finds every connection without a recent success; a repeat refresh that
//! reports what is stored already writes no transaction or account row, and a correction is still
//! written; a new balance for every account of a full table is a HOT update of each; an account's
//! first rows, inserted without an upsert, are written and counted once.

use chrono::{DateTime, TimeDelta, Utc};
use feedwatch::connection::AccountKind;
use feedwatch::connection::lifecycle::{self, Subject, Succeeded};
use feedwatch::connection::store::{ListedAccount, ReportedAccount, store_listed_accounts};
use feedwatch::feed::{ReportedTransaction, store};
use serde_json::json;
use uuid::Uuid;

use crate::support::{TestApp, reported_transaction as reported};

/// The columns a refresh's outcome rewrites (`connection::store::transitions`), which no index of
/// `connection` may name (ARCHITECTURE.md, "Per-refresh columns").
const PER_REFRESH: [&str; 7] =
    ["last_attempt_at", "last_success_at", "data_as_of", "failure_streak", "error_raw", "error_at", "updated_at"];

/// The columns a refresh's listing of accounts rewrites (`connection::store::accounts`), which no
/// index of `account` may name (ARCHITECTURE.md, "Per-refresh columns").
const PER_LISTING: [&str; 11] = [
    "kind",
    "masked_number",
    "bank_name",
    "currency",
    "balance",
    "available",
    "balance_as_of",
    "error_code",
    "state",
    "provider_ref",
    "updated_at",
];

#[tokio::test]
async fn no_index_names_a_column_every_refresh_rewrites() {
    let app = TestApp::spawn().await;
    for (table, columns, at_least) in [("connection", &PER_REFRESH[..], 5), ("account", &PER_LISTING[..], 2)] {
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "select c.relname::text, pg_get_indexdef(i.indexrelid) from pg_index i join pg_class c on c.oid = i.indexrelid
             where i.indrelid = $1::regclass",
        )
        .bind(table)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        assert!(indexes.len() >= at_least, "{indexes:?}");
        for (name, definition) in &indexes {
            let named = definition.split_once(" USING ").map_or(definition.as_str(), |(_, columns)| columns);
            for column in columns {
                assert!(!named.contains(column), "{name} names {column}: {definition}");
            }
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
    let before = updates(&mut tx, "connection").await;
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
        stalled: &[],
        trace: None,
    };
    lifecycle::refreshes_succeeded(&mut tx, &[(subject, done)]).await.unwrap();
    let after = updates(&mut tx, "connection").await;
    let (updated, hot) = (after.0 - before.0, after.1 - before.1);
    assert_eq!((updated, hot), (1, 1), "the success updated {updated} connection rows, {hot} of them HOT");
}

/// The rows of `table` this backend inserted, updated and HOT-updated that the cumulative view
/// has not been told of yet. Read twice in one transaction, the difference is exactly what ran in
/// between: a backend reports its counts only between transactions (and on PostgreSQL 15 these
/// functions include the earlier transactions' counts it has not reported yet).
async fn counts(tx: &mut sqlx::PgConnection, table: &str) -> (i64, i64, i64) {
    sqlx::query_as(
        "select pg_stat_get_xact_tuples_inserted($1::regclass), pg_stat_get_xact_tuples_updated($1::regclass),
                pg_stat_get_xact_tuples_hot_updated($1::regclass)",
    )
    .bind(table)
    .fetch_one(tx)
    .await
    .unwrap()
}

/// Updated and HOT-updated rows of `table`, as [`counts`] reads them.
async fn updates(tx: &mut sqlx::PgConnection, table: &str) -> (i64, i64) {
    let (_, updated, hot) = counts(tx, table).await;
    (updated, hot)
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

/// Applies `batch` as a refresh does (under the connection's lock) and returns what it changed
/// with the rows of `feed_transaction` it inserted or updated, as this transaction counted them.
async fn apply(app: &TestApp, connection: Uuid, account: Uuid, batch: &[ReportedTransaction], from: i64) -> (u64, i64) {
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    store::lock_connection(&mut *tx, connection).await.unwrap();
    let window_start = DateTime::from_timestamp(1_760_000_000 + from * 86_400, 0).unwrap();
    let before = counts(&mut tx, "feed_transaction").await;
    let changes = crate::support::apply_statement(&mut tx, connection, &[(account, batch)], window_start).await;
    let after = counts(&mut tx, "feed_transaction").await;
    tx.commit().await.unwrap();
    (changes.added + changes.modified + changes.removed, (after.0 - before.0) + (after.1 - before.1))
}

#[tokio::test]
async fn a_repeat_statement_writes_no_transaction_row_and_a_correction_is_written() {
    let app = TestApp::spawn().await;
    let crate::support::FedAccount { connection: id, account, .. } = app.fed_account().await;
    let statement = vec![reported("a", 1, "-10.00"), reported("b", 2, "-20.00"), reported("c", 3, "5.00")];
    assert_eq!(apply(&app, id, account, &statement, 0).await, (3, 3), "the first apply adds the three");
    assert_eq!(apply(&app, id, account, &statement, 0).await, (0, 0), "the same statement again writes nothing");
    assert_eq!(apply(&app, id, account, &statement, 1).await, (0, 0), "nor over a later window");
    let mut corrected = statement.clone();
    corrected[1].amount = "-21.00".parse().unwrap();
    assert_eq!(apply(&app, id, account, &corrected, 1).await, (1, 1), "a corrected amount is written");
    assert_eq!(
        apply(&app, id, account, &corrected, 0).await.0,
        0,
        "an earlier window is applied in full, finding nothing"
    );
    // A write in between (here by hand, as an import would) means the digest no longer speaks
    // for what is stored: the next apply runs in full and puts the bank's row back.
    sqlx::query(
        "update feed_transaction set memo = 'edited', change_seq = nextval('feed_change_seq') where fitid = 'a'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    assert_eq!(apply(&app, id, account, &corrected, 0).await, (1, 1), "the edited row is restored");
    let amount: String =
        sqlx::query_scalar("select amount::text from feed_transaction where account_id = $1 and fitid = 'b'")
            .bind(account)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(amount, "-21.0000");
}

/// Stores `listed` as a refresh does (under the connection's lock): the accounts' ids, and the
/// rows of `account` inserted, updated and updated HOT.
async fn store_listing(
    app: &TestApp,
    connection: Uuid,
    listed: &[ListedAccount<'_>],
) -> (Vec<Vec<Uuid>>, (i64, i64, i64)) {
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    store::lock_connection(&mut *tx, connection).await.unwrap();
    let before = counts(&mut tx, "account").await;
    let ids = store_listed_accounts(&mut *tx, &[(connection, listed)]).await.unwrap();
    let after = counts(&mut tx, "account").await;
    tx.commit().await.unwrap();
    (ids, (after.0 - before.0, after.1 - before.1, after.2 - before.2))
}

/// Nearly every refresh brings each account a new balance or a new date for it. Once the table's
/// pages are as full as inserts leave them, a listing that changes every account still updates
/// each on its own page (HOT: one heap tuple, no index entry), because `account` keeps room for a
/// new version of each row (`fillfactor`); a full page would move the new versions elsewhere and
/// write an entry in each index for every one.
#[tokio::test]
async fn a_new_balance_for_every_account_updates_each_on_its_page() {
    let app = TestApp::spawn().await;
    let subject = synced_connection(&app).await;
    let ids: Vec<String> = (0..400).map(|n| format!("many-{n:03}")).collect();
    let listing = |balance: &str| -> Vec<ListedAccount<'_>> {
        ids.iter()
            .map(|id| ListedAccount {
                reported: ReportedAccount {
                    balance: Some(balance.parse().unwrap()),
                    balance_as_of: Some(DateTime::from_timestamp(1_760_000_000, 0).unwrap()),
                    ..crate::support::reported_account(id, AccountKind::Checking, "Everyday checking")
                },
                provider_ref: None,
            })
            .collect()
    };
    let (_, (inserted, _, _)) = store_listing(&app, subject.connection_id, &listing("10.00")).await;
    assert_eq!(inserted, 400);
    let pages: i64 = sqlx::query_scalar("select pg_relation_size('account') / current_setting('block_size')::bigint")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(pages >= 4, "the accounts fill {pages} pages: too few to show whether pages keep room");
    let (_, (inserted, updated, hot)) = store_listing(&app, subject.connection_id, &listing("12.50")).await;
    assert_eq!((inserted, updated), (0, 400));
    assert_eq!(hot, 400, "{hot} of 400 balance updates stayed on their page");
}

/// What a refresh's listing does to `account`: the connection's accounts listed as they are
/// stored write nothing (a repeat refresh that finds nothing new should write its outcome and
/// little else); a changed balance rewrites that account alone; either way every listed account's
/// id comes back in the order listed.
#[tokio::test]
async fn accounts_listed_as_they_are_stored_are_not_rewritten() {
    let app = TestApp::spawn().await;
    let subject = synced_connection(&app).await;
    let connection = subject.connection_id;
    let as_of = DateTime::from_timestamp(1_760_000_000, 0).unwrap();
    let account = |bank_account_id, balance: &str| ReportedAccount {
        bank_account_id,
        kind: AccountKind::Checking,
        masked_number: "****1234",
        bank_name: "Everyday checking",
        currency: "USD",
        balance: Some(balance.parse().unwrap()),
        available: None,
        balance_as_of: Some(as_of),
        error_code: None,
    };
    let reference = json!({ "acctid": "1" });
    let listing = |first: &str| {
        vec![
            ListedAccount { reported: account("bench-1", first), provider_ref: Some(&reference) },
            ListedAccount { reported: account("bench-2", "20.00"), provider_ref: None },
        ]
    };
    let (first_ids, written) = store_listing(&app, connection, &listing("10.00")).await;
    assert_eq!(first_ids[0].len(), 2);
    assert_eq!(written.0, 2, "both accounts are new");
    let (ids, written) = store_listing(&app, connection, &listing("10.00")).await;
    assert_eq!(ids, first_ids, "the same accounts, in the order listed");
    assert_eq!(written, (0, 0, 0), "nothing changed, nothing written");
    let (ids, written) = store_listing(&app, connection, &listing("12.50")).await;
    assert_eq!(ids, first_ids);
    assert_eq!(written, (0, 1, 1), "the account whose balance changed, and it alone, on its page");
    let balances: Vec<(String, Option<rust_decimal::Decimal>)> = sqlx::query_as(
        "select bank_account_id, balance from account where connection_id = $1 and bank_account_id like 'bench-%'
         order by bank_account_id",
    )
    .bind(connection)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(
        balances,
        [("bench-1".into(), Some("12.50".parse().unwrap())), ("bench-2".into(), Some("20.00".parse().unwrap()))]
    );
}

/// One statement for an account with history and one without any (its first refresh, whose rows
/// are inserted without an upsert): each account's rows are counted and stored once, the known
/// account is still compared row by row, and the sync cursor sees every new row after the old.
#[tokio::test]
async fn a_statement_for_a_new_account_and_a_known_one_writes_each_row_once() {
    let app = TestApp::spawn().await;
    let crate::support::FedAccount { connection, account: known, .. } = app.fed_account().await;
    let listed = crate::support::reported_account("second", AccountKind::Savings, "Savings");
    let new = feedwatch::connection::store::upsert_account(&app.pool, connection, &listed).await.unwrap();
    let history = vec![reported("a", 1, "-10.00"), reported("b", 2, "-20.00")];
    assert_eq!(apply(&app, connection, known, &history, 0).await, (2, 2));
    let cursor: i64 = sqlx::query_scalar("select max(change_seq) from feed_transaction where connection_id = $1")
        .bind(connection)
        .fetch_one(&app.pool)
        .await
        .unwrap();

    let mut known_now = history.clone();
    known_now[1].amount = "-21.00".parse().unwrap();
    known_now.push(reported("c", 3, "7.00"));
    let first = [reported("a", 1, "-1.00"), reported("x", 2, "-2.00"), reported("y", 3, "-3.00")];
    let mut tx = feedwatch::database::begin(&app.pool).await.unwrap();
    store::lock_connection(&mut *tx, connection).await.unwrap();
    let window_start = DateTime::from_timestamp(1_760_000_000, 0).unwrap();
    let changes = crate::support::apply_statement(
        &mut tx,
        connection,
        &[(known, &known_now[..]), (new, &first[..])],
        window_start,
    )
    .await;
    tx.commit().await.unwrap();
    assert_eq!((changes.added, changes.modified, changes.removed), (4, 1, 0), "c, a, x and y added; b modified");

    let after: Vec<(Uuid, String, String)> = sqlx::query_as(
        "select account_id, fitid, amount::text from feed_transaction
         where connection_id = $1 and change_seq > $2 order by change_seq",
    )
    .bind(connection)
    .bind(cursor)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut seen: Vec<(Uuid, &str, &str)> = after.iter().map(|(a, f, m)| (*a, f.as_str(), m.as_str())).collect();
    seen.sort();
    let mut expected = vec![
        (known, "b", "-21.0000"),
        (known, "c", "7.0000"),
        (new, "a", "-1.0000"),
        (new, "x", "-2.0000"),
        (new, "y", "-3.0000"),
    ];
    expected.sort();
    assert_eq!(seen, expected, "every changed row once, after the cursor");
}
