//! Statement import against a sandbox connection over real HTTP: the report, deduplication
//! against the feed both ways, held rows, refusals.

use reqwest::Method;
use serde_json::Value;
use uuid::Uuid;

use crate::support::{Options, TestApp, assert_problem};

pub(crate) async fn connected(app: &TestApp) -> (String, String) {
    let tenant = app.key("tenant", Some(Uuid::new_v4())).await;
    let bank = app.sandbox_institution("healthy").await;
    let id = app.connection(&tenant, bank, "Imports", "pass_good").await["id"].as_str().unwrap().to_owned();
    app.refresh_pool().run_until_idle().await;
    (tenant, id)
}

/// The first account of the connection and its stored transactions (oldest first).
pub(crate) async fn first_account(app: &TestApp, key: &str, connection: &str) -> (Value, Vec<Value>) {
    let accounts = app.get_json(key, &format!("/v1/connections/{connection}/accounts")).await;
    let account = accounts[0].clone();
    let listed =
        app.get_json(key, &format!("/v1/accounts/{}/transactions?limit=200", account["id"].as_str().unwrap())).await;
    (account, listed["items"].as_array().unwrap().clone())
}

pub(crate) fn sgml(account: &str, rows: &[(&str, &str, &str, &str)]) -> String {
    let mut body = String::from(
        "OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\nCHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n<OFX><SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1>\n<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS><STMTRS><CURDEF>USD\n",
    );
    body.push_str(&format!(
        "<BANKACCTFROM><BANKID>1<ACCTID>{account}<ACCTTYPE>CHECKING</BANKACCTFROM><BANKTRANLIST>\n"
    ));
    for (fitid, day, amount, name) in rows {
        body.push_str(&format!(
            "<STMTTRN><TRNTYPE>OTHER<DTPOSTED>{day}<TRNAMT>{amount}<FITID>{fitid}<NAME>{name}</STMTTRN>\n"
        ));
    }
    body.push_str("</BANKTRANLIST></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n");
    body
}

/// `2024-05-01T14:00:00Z` → `20240501`.
fn ofx_day(posted_at: &Value) -> String {
    posted_at.as_str().unwrap()[..10].replace('-', "")
}

pub(crate) async fn post_file(
    app: &TestApp,
    key: &str,
    connection: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.anonymous(Method::POST, &format!("/v1/connections/{connection}/imports"))
        .bearer_auth(key)
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_ofx_file_adds_what_is_new_holds_look_alikes_and_adds_nothing_twice() {
    let app = TestApp::spawn().await;
    let (tenant, id) = connected(&app).await;
    let (account, stored) = first_account(&app, &tenant, &id).await;
    let cursor =
        app.get_json(&tenant, &format!("/v1/connections/{id}/transactions/sync?count=500")).await["next_cursor"]
            .clone();
    // `a` and `b` are in the file with the bank's ids; `c` is not, but a row of the same day
    // and amount under another payee is: it is held, not added and not merged.
    let (a, b, c) = (&stored[0], &stored[1], &stored[2]);
    let look_alike_day = ofx_day(&c["posted_at"]);
    let rows = [
        (
            a["fitid"].as_str().unwrap(),
            ofx_day(&a["posted_at"]),
            a["amount"].as_str().unwrap(),
            a["name"].as_str().unwrap(),
        ),
        (
            b["fitid"].as_str().unwrap(),
            ofx_day(&b["posted_at"]),
            b["amount"].as_str().unwrap(),
            b["name"].as_str().unwrap(),
        ),
        ("NEW-1", "20200102".to_owned(), "-12.34", "CORNER SHOP"),
        ("", look_alike_day.clone(), c["amount"].as_str().unwrap(), "SOMETHING ELSE ENTIRELY"),
    ];
    let rows: Vec<(&str, &str, &str, &str)> = rows.iter().map(|(f, d, m, n)| (*f, d.as_str(), *m, *n)).collect();
    let file = sgml(account["bank_account_id"].as_str().unwrap(), &rows);

    let response = post_file(&app, &tenant, &id, file.clone()).await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let report: Value = response.json().await.unwrap();
    let accounts = report["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{report}");
    assert_eq!(accounts[0]["account_id"], account["id"]);
    assert_eq!(
        (accounts[0]["added"].as_u64(), accounts[0]["already_present"].as_u64()),
        (Some(1), Some(2)),
        "{report}"
    );
    let held = accounts[0]["probable_duplicates"].as_array().unwrap();
    assert_eq!(held.len(), 1, "{report}");
    assert_eq!(held[0]["resembles"], c["id"]);
    assert!(report["warnings"].as_array().unwrap().iter().any(|w| w["code"] == "missing_fitid"), "{report}");
    assert_eq!(report["start"], "2020-01-02");

    let sync = app
        .get_json(&tenant, &format!("/v1/connections/{id}/transactions/sync?cursor={}", cursor.as_str().unwrap()))
        .await;
    let added = sync["added"].as_array().unwrap();
    assert_eq!(added.len(), 1, "{sync}");
    assert_eq!(added[0]["fitid"], "NEW-1");
    assert_eq!(added[0]["amount"], "-12.3400");

    let again: Value = post_file(&app, &tenant, &id, file).await.json().await.unwrap();
    assert_eq!(again["accounts"][0]["added"], 0, "{again}");
    assert_eq!(again["accounts"][0]["already_present"], 3, "{again}");

    // The file's period runs from 2020 into the feed's window: one span, both sources.
    let coverage = app.get_json(&tenant, &format!("/v1/accounts/{}/coverage", account["id"].as_str().unwrap())).await;
    assert_eq!(coverage["covered"][0]["from"], "2020-01-02", "{coverage}");
    assert_eq!(coverage["covered"][0]["sources"], serde_json::json!(["feed", "import"]), "{coverage}");
    assert_eq!(coverage["gaps"], serde_json::json!([]), "{coverage}");
    let shown = app.get_json(&tenant, &location).await;
    assert_eq!(shown["duplicates"][0]["state"], "held", "{shown}");
    let decide = |decision: &'static str, duplicate: Value| {
        let url = format!("{location}/duplicates/{}", duplicate.as_str().unwrap());
        let request =
            app.anonymous(Method::POST, &url).bearer_auth(&tenant).json(&serde_json::json!({ "decision": decision }));
        async move { request.send().await.unwrap() }
    };
    let confirmed = decide("imported", held[0]["duplicate_id"].clone()).await;
    assert_eq!(confirmed.status(), 200);
    assert_problem(decide("discarded", held[0]["duplicate_id"].clone()).await, 409, "duplicate_decided").await;
    let (_, after) = first_account(&app, &tenant, &id).await;
    assert_eq!(after.len(), stored.len() + 2, "the new row and the confirmed one");
}

#[tokio::test]
async fn a_csv_imported_before_the_feed_fetches_its_rows_leaves_one_transaction_each() {
    let app = TestApp::spawn().await;
    let (tenant, id) = connected(&app).await;
    let (account, stored) = first_account(&app, &tenant, &id).await;
    // The feed has not fetched the newest few yet, as if the bank had been down; they are days
    // the next refresh asks for again (its window reaches 14 days before the last success).
    let recent = (chrono::Utc::now() - chrono::TimeDelta::days(10)).to_rfc3339();
    let newest: Vec<&Value> =
        stored.iter().rev().filter(|t| t["posted_at"].as_str().unwrap() >= recent.as_str()).take(3).collect();
    let n = newest.len() as u64;
    assert!(n > 0, "the sandbox posts every few days: {stored:?}");
    let ids: Vec<Uuid> = newest.iter().map(|t| t["id"].as_str().unwrap().parse().unwrap()).collect();
    sqlx::query("delete from feed_transaction where id = any($1)").bind(&ids).execute(&app.pool).await.unwrap();
    let mut csv = String::from("Date,Description,Amount\n");
    for transaction in newest.iter().rev() {
        let day = &transaction["posted_at"].as_str().unwrap()[..10];
        csv.push_str(&format!(
            "{day},\"{}\",{}\n",
            transaction["name"].as_str().unwrap(),
            transaction["amount"].as_str().unwrap()
        ));
    }
    let url = format!("/v1/connections/{id}/accounts/{}/imports", account["id"].as_str().unwrap());
    let response = app.anonymous(Method::POST, &url).bearer_auth(&tenant).body(csv.clone()).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["accounts"][0]["added"], n, "{report}");
    assert_eq!(report["format"], "csv");

    let refresh = app
        .anonymous(Method::POST, &format!("/v1/connections/{id}/refresh"))
        .bearer_auth(&tenant)
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 202);
    app.refresh_pool().run_until_idle().await;
    let (_, after) = first_account(&app, &tenant, &id).await;
    let mut fitids: Vec<&str> = after.iter().map(|t| t["fitid"].as_str().unwrap()).collect();
    let mut expected: Vec<&str> = stored.iter().map(|t| t["fitid"].as_str().unwrap()).collect();
    fitids.sort_unstable();
    expected.sort_unstable();
    assert_eq!(fitids, expected, "the feed adopted the imported rows under the bank's ids");

    let again: Value =
        app.anonymous(Method::POST, &url).bearer_auth(&tenant).body(csv).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        (again["accounts"][0]["added"].as_u64(), again["accounts"][0]["already_present"].as_u64()),
        (Some(0), Some(n)),
        "{again}"
    );
}

#[tokio::test]
async fn unreadable_files_name_the_line_and_unmatched_accounts_are_refused() {
    let app = TestApp::spawn().await;
    let (tenant, id) = connected(&app).await;
    let ambiguous = "Date,Description,Amount\n01/02/2024,A,-1.00\n02/01/2024,B,-2.00\n01/03/2024,C,-3.00\n";
    let problem = assert_problem(post_file(&app, &tenant, &id, ambiguous).await, 422, "statement_unreadable").await;
    assert_eq!(problem["errors"][0]["field"], "file:line 2", "{problem}");
    let other_account = sgml("NOT-MINE", &[("X1", "20240101", "-1.00", "A")]);
    assert_problem(post_file(&app, &tenant, &id, other_account).await, 422, "statement_account_unmatched").await;
    assert_problem(post_file(&app, &tenant, &id, "\u{0}\u{1}binary").await, 422, "statement_unreadable").await;
    // The agent the customer calls looks the problem code up as it is, and finds its fix.
    for (reason, code) in [("statement_unreadable", 620), ("statement_account_unmatched", 621)] {
        let url = format!("/v1/errors/{reason}");
        let found: Value =
            app.anonymous(Method::GET, &url).bearer_auth(&tenant).send().await.unwrap().json().await.unwrap();
        assert_eq!((found["entry"]["code"].as_u64(), found["matched"]["by"].as_str()), (Some(code), Some("reason")));
        assert_eq!(found["entry"]["category"], "statement", "{found}");
    }
    let stranger = app.key("tenant", Some(Uuid::new_v4())).await;
    assert_problem(post_file(&app, &stranger, &id, ambiguous).await, 404, "not_found").await;
}

#[tokio::test]
async fn a_multipart_upload_with_options_reads_as_told() {
    let app = TestApp::spawn().await;
    let (tenant, id) = connected(&app).await;
    let (account, _) = first_account(&app, &tenant, &id).await;
    // Every date fits both orders and the rows are in no order: only the options can tell.
    let csv = "Date,Text,Amount\n02/01/2024,Kiosk,-1.50\n01/03/2024,Baker,-2.40\n03/02/2024,Cafe,-3.10\n";
    let boundary = "feedwatch-test-boundary";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{{\"date_order\": \"day_first\"}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n\
         --{boundary}--\r\n"
    );
    let url = format!("/v1/connections/{id}/imports?account_id={}", account["id"].as_str().unwrap());
    let response = app
        .anonymous(Method::POST, &url)
        .bearer_auth(&tenant)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["accounts"][0]["added"], 3, "{report}");
    assert_eq!(
        (report["start"].as_str(), report["end"].as_str()),
        (Some("2024-01-02"), Some("2024-03-01")),
        "{report}"
    );
}

#[tokio::test]
async fn a_form_whose_parts_are_not_the_documented_ones_is_refused_and_imports_nothing() {
    let app = TestApp::spawn().await;
    let (tenant, id) = connected(&app).await;
    let csv = "Date,Text,Amount\n2024-01-02,Kiosk,-1.50\n";
    let boundary = "feedwatch-test-boundary";
    let form = |name: &str, value: &str| {
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.csv\"\r\n\r\n{csv}\r\n\
             --{boundary}--\r\n"
        )
    };
    for (body, field) in [(form("options", "not json at all"), "options"), (form("notes", "{}"), "notes")] {
        let response = app
            .anonymous(Method::POST, &format!("/v1/connections/{id}/imports"))
            .bearer_auth(&tenant)
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .body(body)
            .send()
            .await
            .unwrap();
        let problem = assert_problem(response, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    // The refused forms wrote nothing: the same row sent properly is still new.
    let (account, _) = first_account(&app, &tenant, &id).await;
    let url = format!("/v1/connections/{id}/imports?account_id={}", account["id"].as_str().unwrap());
    let response = app.anonymous(Method::POST, &url).bearer_auth(&tenant).body(csv).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["accounts"][0]["added"], 1, "{report}");
}

#[tokio::test]
async fn a_raw_upload_repeated_with_its_idempotency_key_gets_the_first_answer() {
    let app = TestApp::spawn().await;
    let (tenant, id) = connected(&app).await;
    let (account, _) = first_account(&app, &tenant, &id).await;
    let file = sgml(account["bank_account_id"].as_str().unwrap(), &[("K1", "20200105", "-9.99", "STREAMING")]);
    let send = || post_file_with_key(&app, &tenant, &id, file.clone());
    let first = send().await;
    assert_eq!(first.status(), 201);
    let first_body: Value = first.json().await.unwrap();
    let replay = send().await;
    assert_eq!(replay.headers().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
    assert_eq!(replay.json::<Value>().await.unwrap(), first_body);
}

async fn post_file_with_key(app: &TestApp, key: &str, connection: &str, body: String) -> reqwest::Response {
    app.anonymous(Method::POST, &format!("/v1/connections/{connection}/imports"))
        .bearer_auth(key)
        .header("idempotency-key", "file-1")
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_file_over_the_import_limit_is_413() {
    let app = TestApp::spawn_with(Options { import_max_bytes: 2048, ..Options::default() }).await;
    let (tenant, id) = connected(&app).await;
    let big = "Date,Description,Amount\n".to_owned() + &"2024-01-01,Coffee,-3.50\n".repeat(200);
    assert_problem(post_file(&app, &tenant, &id, big).await, 413, "payload_too_large").await;
}

/// A CSV of `rows` distinct transactions, one a minute of the same far-past days.
pub(crate) fn csv_of(rows: usize) -> String {
    let mut csv = String::from("Date,Description,Amount\n");
    for i in 0..rows {
        csv.push_str(&format!("2019-{:02}-{:02},\"Kiosk {i:07}\",-{}.{:02}\n", 1 + i % 12, 1 + i % 28, 1 + i, i % 100));
    }
    csv
}

/// Posts `body` chunked (no declared length), as a client streaming a file does; the status line.
pub(crate) async fn chunked_post(app: &TestApp, key: &str, path: &str, body: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {key}\r\ntransfer-encoding: chunked\r\n\r\n",
        app.addr
    );
    let chunks: Vec<Vec<u8>> = body.chunks(64 * 1024).map(<[u8]>::to_vec).collect();
    // The server may answer and stop reading before the last chunk: writes may then fail.
    let writer = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        for chunk in chunks {
            write.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).await?;
            write.write_all(&chunk).await?;
            write.write_all(b"\r\n").await?;
        }
        write.write_all(b"0\r\n\r\n").await
    });
    let mut answer = vec![0; 64];
    let read_bytes = read.read(&mut answer).await.unwrap();
    writer.abort();
    String::from_utf8_lossy(&answer[..read_bytes]).into_owned()
}

pub(crate) async fn imported_rows(app: &TestApp) -> (i64, i64) {
    let files: i64 = sqlx::query_scalar("select count(*) from statement_import").fetch_one(&app.pool).await.unwrap();
    let rows: i64 = sqlx::query_scalar("select count(*) from feed_transaction where source = 'import'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (files, rows)
}

/// Imports have their own limit: a file past the API's 1 MiB is taken whole, raw or chunked;
/// one past the import limit is refused with nothing stored; other routes keep 1 MiB.
#[tokio::test]
async fn imports_take_files_past_the_api_body_limit_up_to_their_own() {
    let app = TestApp::spawn_with(Options { import_max_bytes: 3 << 20, ..Options::default() }).await;
    let (tenant, id) = connected(&app).await;
    let (account, _) = first_account(&app, &tenant, &id).await;
    let url = format!("/v1/connections/{id}/accounts/{}/imports", account["id"].as_str().unwrap());
    let file = csv_of(40_000);
    assert!((1 << 20..3 << 20).contains(&file.len()), "{}", file.len());
    let response = app.anonymous(Method::POST, &url).bearer_auth(&tenant).body(file).send().await.unwrap();
    assert_eq!(response.status(), 201);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["accounts"][0]["added"], 40_000);
    assert_eq!(imported_rows(&app).await, (1, 40_000));

    let too_big = csv_of(120_000);
    assert!(too_big.len() > 3 << 20);
    let declared = app.anonymous(Method::POST, &url).bearer_auth(&tenant).body(too_big.clone()).send().await.unwrap();
    assert_problem(declared, 413, "payload_too_large").await;
    assert!(chunked_post(&app, &tenant, &url, too_big.as_bytes()).await.starts_with("HTTP/1.1 413"));
    assert_eq!(imported_rows(&app).await, (1, 40_000), "nothing of the refused files is stored");

    let padding = "x".repeat(3 << 19);
    let other = app
        .anonymous(Method::POST, "/v1/webhooks")
        .bearer_auth(&tenant)
        .header("content-type", "application/json")
        .body(format!("{{\"url\": \"https://example.com/{padding}\"}}"))
        .send()
        .await
        .unwrap();
    assert_problem(other, 413, "payload_too_large").await;
}

/// Any interleaving of refreshes and imports (OFX with the bank's ids, CSV without) over
/// overlapping windows leaves the account holding exactly the bank's transactions of the days
/// covered: nothing twice, nothing lost, identical rows of one day kept apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interleaved_imports_and_refreshes_leave_exactly_the_banks_set() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let app = TestApp::spawn().await;
    let (tenant, id) = connected(&app).await;
    let (account, _) = first_account(&app, &tenant, &id).await;
    let connection_id: Uuid = id.parse().unwrap();
    let account_id: Uuid = account["id"].as_str().unwrap().parse().unwrap();
    let bank_account_id = account["bank_account_id"].as_str().unwrap().to_owned();

    let bank = proptest::collection::vec((0u32..12, 0usize..3, 0usize..3), 1..25);
    let op = (0u8..3, 0u32..12, 0u32..12);
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(24);
    let mut runner = TestRunner::new(Config { cases, ..Config::default() });
    let handle = tokio::runtime::Handle::current();
    let result = runner.run(&(bank, proptest::collection::vec(op, 1..6)), |(bank, ops)| {
        let run = interleaving(&app.pool, connection_id, account_id, &bank_account_id, &bank, &ops);
        let (held, expected) = tokio::task::block_in_place(|| handle.block_on(run));
        prop_assert_eq!(held, expected);
        Ok(())
    });
    result.unwrap();
}

/// One bank transaction: (day of January 2015, amount index, payee index).
type BankRow = (u32, usize, usize);

const AMOUNTS: [&str; 3] = ["-3.50", "-10.00", "25.00"];
const PAYEES: [&str; 3] = ["COFFEE", "GROCER", "SALARY"];

fn facts(row: &BankRow) -> (String, String, String) {
    let (day, amount, payee) = *row;
    (format!("2015-01-{:02}", day + 1), AMOUNTS[amount].to_owned(), PAYEES[payee].to_owned())
}

async fn interleaving(
    pool: &sqlx::PgPool,
    connection_id: Uuid,
    account_id: Uuid,
    bank_account_id: &str,
    bank: &[BankRow],
    ops: &[(u8, u32, u32)],
) -> (Vec<(String, String, String)>, Vec<(String, String, String)>) {
    use feedwatch::feed::{ReportedTransaction, store};
    use rust_decimal::Decimal;
    sqlx::query("delete from feed_transaction where account_id = $1 and posted_at < '2016-01-01'")
        .bind(account_id)
        .execute(pool)
        .await
        .unwrap();
    let mut bank: Vec<BankRow> = bank.to_vec();
    bank.sort_by_key(|row| row.0);
    let fitid = |index: usize| format!("B{index}");
    let mut covered = [false; 12];
    for &(kind, a, b) in ops {
        let (from, to) = if kind == 0 { (a, 11) } else { (a.min(b), a.max(b)) };
        let rows: Vec<(usize, &BankRow)> =
            bank.iter().enumerate().filter(|(_, r)| (from..=to).contains(&r.0)).collect();
        let mut conn = feedwatch::database::begin(pool).await.unwrap();
        match kind {
            0 => {
                let reported: Vec<ReportedTransaction> = rows
                    .iter()
                    .map(|(index, row)| {
                        let (day, amount, payee) = facts(row);
                        ReportedTransaction {
                            fitid: fitid(*index),
                            posted_at: format!("{day}T15:30:00Z").parse().unwrap(),
                            amount: amount.parse::<Decimal>().unwrap(),
                            currency: "USD".to_owned(),
                            name: payee,
                            memo: String::new(),
                            check_number: String::new(),
                            pending: false,
                            replaces_fitid: None,
                        }
                    })
                    .collect();
                let start = format!("2015-01-{:02}T00:00:00Z", from + 1).parse().unwrap();
                store::lock_connection(&mut *conn, connection_id).await.unwrap();
                crate::support::apply_statement(&mut conn, connection_id, &[(account_id, &reported)], start).await;
            }
            _ if rows.is_empty() => {}
            1 => {
                let ofx: Vec<(String, String, &str, &str)> = rows
                    .iter()
                    .map(|(index, row)| (fitid(*index), facts(row).0.replace('-', ""), AMOUNTS[row.1], PAYEES[row.2]))
                    .collect();
                let ofx: Vec<(&str, &str, &str, &str)> =
                    ofx.iter().map(|(f, d, a, p)| (f.as_str(), d.as_str(), *a, *p)).collect();
                let file = sgml(bank_account_id, &ofx);
                let target = feedwatch::import::Target { connection_id, account_id: Some(account_id) };
                feedwatch::import::import(&mut conn, target, file.as_bytes(), &Default::default()).await.unwrap();
            }
            _ => {
                let mut csv = String::from("Date,Description,Amount\n");
                for (_, row) in &rows {
                    let (day, amount, payee) = facts(row);
                    csv.push_str(&format!("{day},{payee},{amount}\n"));
                }
                let target = feedwatch::import::Target { connection_id, account_id: Some(account_id) };
                feedwatch::import::import(&mut conn, target, csv.as_bytes(), &Default::default()).await.unwrap();
            }
        }
        conn.commit().await.unwrap();
        for day in from..=to {
            covered[day as usize] = true;
        }
    }
    let held: Vec<(String, String, String)> = sqlx::query_as::<_, (String, String, String)>(
        "select to_char(posted_at at time zone 'UTC', 'YYYY-MM-DD'), trim_scale(amount)::text, name from feed_transaction
         where account_id = $1 and posted_at < '2016-01-01' and not removed order by 1, 2, 3",
    )
    .bind(account_id)
    .fetch_all(pool)
    .await
    .unwrap();
    let mut expected: Vec<(String, String, String)> = bank
        .iter()
        .filter(|row| covered[row.0 as usize])
        .map(|row| {
            let (day, amount, payee) = facts(row);
            (day, amount.parse::<Decimal>().unwrap().normalize().to_string(), payee)
        })
        .collect();
    expected.sort();
    let mut held = held;
    held.sort();
    (held, expected)
}
