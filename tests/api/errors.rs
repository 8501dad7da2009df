//! The error-code reference over HTTP.

use std::time::Duration;

use feedwatch::catalog::{Code, Purpose};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{TestApp, assert_problem};

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let response = app.admin(Method::GET, path).send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn lookups_resolve_codes_reasons_and_aliases_in_any_case() {
    let app = TestApp::spawn().await;
    let tenant = app.key("tenant", Some(uuid::Uuid::new_v4())).await;
    let response = app.anonymous(Method::GET, "/v1/errors/102").bearer_auth(&tenant).send().await.unwrap();
    assert_eq!(response.status(), 200, "every role may read the reference");
    assert_eq!(response.headers()["etag"], "\"r1\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["matched"]["by"], "code");
    let entry = &body["entry"];
    assert_eq!(entry["reason"], "bank_unavailable");
    assert_eq!(body["retry_after_seconds"], 4 * 3600);
    assert!(entry["steps"].as_array().unwrap().len() >= 3);
    assert!(body["aliases"].as_array().unwrap().iter().any(|a| a["namespace"] == "ofx" && a["code"] == "2000"));

    for path in [
        "plaid:ITEM_LOGIN_REQUIRED",
        "plaid:item_login_required",
        "ITEM_LOGIN_REQUIRED",
        "ofx:15500",
        "qbo:103",
        "mx:DENIED",
        "credentials_rejected",
    ] {
        let (status, body) = get(&app, &format!("/v1/errors/{path}")).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(body["entry"]["code"], 103, "{path}");
    }
    let (_, body) = get(&app, "/v1/errors/yodlee:407").await;
    assert_eq!(body["matched"]["by"], "alias");
    assert_eq!(body["matched"]["alias"]["namespace"], "yodlee");
    assert_eq!(body["entry"]["code"], 701);
}

#[tokio::test]
async fn an_ambiguous_bare_code_lists_every_candidate() {
    let app = TestApp::spawn().await;
    let (status, body) = get(&app, "/v1/errors/402").await;
    assert_eq!(status, 300);
    let candidates = body["candidates"].as_array().unwrap();
    assert!(candidates.len() >= 2);
    for candidate in candidates {
        let alias = &candidate["alias"];
        assert!(alias["namespace"].is_string() && alias["canonical"].is_number(), "{candidate}");
        let path = format!("/v1/errors/{}:{}", alias["namespace"].as_str().unwrap(), alias["code"].as_str().unwrap());
        let (status, resolved) = get(&app, &path).await;
        assert_eq!(status, 200);
        assert_eq!(resolved["entry"]["code"], alias["canonical"]);
    }
}

#[tokio::test]
async fn an_unknown_code_is_a_404_with_suggestions() {
    let app = TestApp::spawn().await;
    let response = app.admin(Method::GET, "/v1/errors/ITEM_LOGIN_REQIRED").send().await.unwrap();
    let problem = assert_problem(response, 404, "unknown_error_code").await;
    assert_eq!(problem["suggestions"][0], "plaid:ITEM_LOGIN_REQUIRED");
    let response = app.admin(Method::GET, "/v1/errors/zzzzzzzz").send().await.unwrap();
    assert_problem(response, 404, "unknown_error_code").await;
}

#[tokio::test]
async fn search_ranks_the_entry_a_helpdesk_agent_means_first() {
    let app = TestApp::spawn().await;
    for (query, expected) in [
        ("can't connect to bank", 102),
        ("password changed", 103),
        ("account not found", 324),
        ("verification code", 185),
        ("ITEM_LOGIN_REQIRED", 103),
    ] {
        let response = app.admin(Method::GET, "/v1/errors").query(&[("q", query)]).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["items"][0]["code"], expected, "{query}: {body}");
    }
    let (_, body) = get(&app, "/v1/errors?q=ITEM_LOGIN_REQIRED").await;
    assert_eq!(body["items"][0]["matched_by"], "similar_code");
    assert_eq!(body["items"][0]["matched"], "plaid:ITEM_LOGIN_REQUIRED");
}

#[tokio::test]
async fn search_filters_by_category_actor_retryable_and_provider() {
    let app = TestApp::spawn().await;
    let (status, body) = get(&app, "/v1/errors?actor=bank&retryable=true&limit=100").await;
    assert_eq!(status, 200);
    let items = body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    assert!(items.iter().all(|item| item["actor"] == "bank" && item["retryable"] == true));
    let (_, body) = get(&app, "/v1/errors?category=mfa&provider=mx").await;
    assert!(body["items"].as_array().unwrap().iter().all(|item| item["category"] == "mfa"));
    for bad in ["actor=martian", "retryable=perhaps", "limit=0", "limit=101"] {
        let response = app.admin(Method::GET, &format!("/v1/errors?{bad}")).send().await.unwrap();
        assert_problem(response, 400, "invalid_query_parameter").await;
    }
}

async fn edited_102(app: &TestApp) -> Value {
    let (_, body) = get(app, "/v1/errors/102").await;
    let mut entry = body["entry"].clone();
    entry["user_message"] = json!("Your bank is having trouble right now. We will keep trying; nothing to do.");
    entry
}

#[tokio::test]
async fn an_admin_edit_is_a_new_revision_visible_at_once_and_kept_in_history() {
    let app = TestApp::spawn().await;
    let edit = edited_102(&app).await;
    let response =
        app.admin(Method::PUT, "/v1/errors/102").header("if-match", "\"r1\"").json(&edit).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["etag"], "\"r2\"");

    let (_, body) = get(&app, "/v1/errors/qbo:102").await;
    assert_eq!(body["entry"]["user_message"], edit["user_message"]);
    assert_eq!(body["revision"], 2);

    let (status, revisions) = get(&app, "/v1/errors/102/revisions").await;
    assert_eq!(status, 200);
    let revisions = revisions.as_array().unwrap();
    assert_eq!(revisions.len(), 2);
    assert_eq!(revisions[0]["origin"], "admin");
    assert!(revisions[0]["edited_by"].is_string());
    assert_eq!(revisions[1]["origin"], "shipped");
    assert_ne!(revisions[1]["entry"]["user_message"], edit["user_message"]);

    let stale = app.admin(Method::PUT, "/v1/errors/102").header("if-match", "\"r1\"").json(&edit).send().await.unwrap();
    assert_problem(stale, 412, "stale_revision").await;
}

#[tokio::test]
async fn edits_are_validated_like_shipped_files() {
    let app = TestApp::spawn().await;
    let mut edit = edited_102(&app).await;
    edit["steps"] = json!([]);
    edit["related"] = json!([4242]);
    let response = app.admin(Method::PUT, "/v1/errors/102").json(&edit).send().await.unwrap();
    let problem = assert_problem(response, 422, "validation_failed").await;
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields.contains(&"steps") && fields.contains(&"related"), "{fields:?}");

    let mut other = edited_102(&app).await;
    other["code"] = json!(103);
    let response = app.admin(Method::PUT, "/v1/errors/102").json(&other).send().await.unwrap();
    assert_problem(response, 422, "validation_failed").await;
    let response = app.admin(Method::PUT, "/v1/errors/4242").json(&edited_102(&app).await).send().await.unwrap();
    assert_problem(response, 404, "not_found").await;
    let (_, body) = get(&app, "/v1/errors/102").await;
    assert_eq!(body["revision"], 1, "nothing was stored");
}

#[tokio::test]
async fn only_admins_edit() {
    let app = TestApp::spawn().await;
    let edit = edited_102(&app).await;
    for role in ["helpdesk", "tenant"] {
        let tenant = (role == "tenant").then(uuid::Uuid::new_v4);
        let key = app.key(role, tenant).await;
        let response = app.anonymous(Method::PUT, "/v1/errors/102").bearer_auth(&key).json(&edit).send().await.unwrap();
        assert_problem(response, 403, "forbidden").await;
    }
}

#[tokio::test]
async fn another_replica_sees_an_edit_through_notify() {
    let app = TestApp::spawn().await;
    let replica = app.replica().await;
    let mut changes = replica.catalog.subscribe();
    changes.borrow_and_update();
    let edit = edited_102(&app).await;
    assert_eq!(app.admin(Method::PUT, "/v1/errors/102").json(&edit).send().await.unwrap().status(), 200);
    // The replica reloads on the notification, or on the reload that follows its LISTEN when
    // the edit came first; either way it must come to hold the edit.
    let edited = edit["user_message"].as_str().unwrap().to_owned();
    let holds_edit = |index: &feedwatch::catalog::CatalogIndex| {
        index.entry(Code::new(102)).is_some_and(|stored| stored.entry.user_message == edited)
    };
    tokio::time::timeout(Duration::from_secs(10), async {
        while !holds_edit(&changes.borrow_and_update()) {
            changes.changed().await.unwrap();
        }
    })
    .await
    .expect("the replica reloads");
    let url = format!("http://{}/v1/errors/102", replica.addr);
    let body: Value = app.client.get(url).bearer_auth(&app.admin_key).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["entry"]["user_message"], edit["user_message"]);
    replica.stop().await.unwrap();
}

#[tokio::test]
async fn a_changed_shipped_text_wins_over_an_admin_edit_and_an_unchanged_one_does_not() {
    let app = TestApp::spawn().await;
    let edit = edited_102(&app).await;
    assert_eq!(app.admin(Method::PUT, "/v1/errors/102").json(&edit).send().await.unwrap().status(), 200);

    let mut shipped = feedwatch::catalog::Catalog::shipped().unwrap();
    assert!(!feedwatch::catalog::sync_shipped(&app.pool, &shipped).await.unwrap(), "a restart changes nothing");
    let index = feedwatch::catalog::load_index(&app.pool, Purpose::Lookup).await.unwrap();
    assert_eq!(index.entry(Code::new(102)).unwrap().entry.user_message, edit["user_message"].as_str().unwrap());

    shipped.entries.get_mut(&Code::new(102)).unwrap().meaning.push_str(" (Reviewed again.)");
    assert!(feedwatch::catalog::sync_shipped(&app.pool, &shipped).await.unwrap());
    let index = feedwatch::catalog::load_index(&app.pool, Purpose::Lookup).await.unwrap();
    let stored = index.entry(Code::new(102)).unwrap();
    assert_eq!(stored.revision, 3);
    assert!(stored.entry.meaning.ends_with("(Reviewed again.)"));
    assert_ne!(stored.entry.user_message, edit["user_message"].as_str().unwrap());
}

#[tokio::test]
async fn the_catalogue_exports_as_json_and_csv() {
    let app = TestApp::spawn().await;
    let (status, body) = get(&app, "/v1/errors/export").await;
    assert_eq!(status, 200);
    let entries = body.as_array().unwrap();
    assert!(entries.len() >= 25);
    assert!(entries.iter().all(|entry| entry["aliases"].is_array() && entry["entry"]["code"].is_number()));
    let response = app.admin(Method::GET, "/v1/errors/export?format=csv").send().await.unwrap();
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let text = response.text().await.unwrap();
    assert!(text.starts_with("code,reason,title,"));
    assert!(text.contains("\n102,bank_unavailable,Bank not responding,bank,bank,true,4h,wait_until,"));
    let response = app.admin(Method::GET, "/v1/errors/export?format=xml").send().await.unwrap();
    assert_problem(response, 400, "invalid_query_parameter").await;
}

/// `feedwatch errors search …` and `GET /v1/errors?q=…` give the same entries in the same order:
/// both ask `catalog::search::search` with its default limit. Checked on every question of the
/// search evaluation set (`catalog/eval/questions.toml`, every split and language), which one
/// CLI process reads from its standard input: a process per question built the index each time,
/// a second in a debug build, and this test once sampled 150 to stay within minutes. A question
/// in a language search knows no word of finds nothing from either, and that must agree too.
#[tokio::test]
async fn the_cli_and_the_api_answer_questions_alike() {
    let app = TestApp::spawn().await;
    let questions: toml::Value = toml::from_str(include_str!("../../catalog/eval/questions.toml")).unwrap();
    let asked: Vec<&str> = questions["question"]
        .as_array()
        .unwrap()
        .iter()
        .map(|question| question["q"].as_str().unwrap().trim())
        .collect();
    // One process reads them all (`errors search -`), as an agent checks a day's tickets; the
    // first is asked once more the way it is typed, as words.
    let lines = asked.join("\n");
    let each_line = cli(&["errors", "search", "-"], lines.as_bytes()).await;
    let answers: Vec<(&str, Vec<u64>)> = each_line
        .split_terminator("\n\n")
        .map(|block| {
            let (question, hits) = block.strip_prefix("? ").unwrap().split_once('\n').unwrap();
            (question, codes_listed(hits))
        })
        .collect();
    assert_eq!(answers.len(), asked.len(), "one answer per line: {each_line}");
    let as_words: Vec<&str> = ["errors", "search"].into_iter().chain(asked[0].split(' ')).collect();
    assert_eq!(codes_listed(&cli(&as_words, b"").await), answers[0].1, "{}", asked[0]);
    // A ticket export in another encoding: its stray bytes are read as U+FFFD, the list goes on.
    let mixed = cli(&["errors", "search", "-"], b"caf\xe9 bank down\r\n\n\nbank down\n").await;
    let mixed: Vec<&str> = mixed.lines().filter(|line| line.starts_with("? ")).collect();
    assert_eq!(mixed, ["? caf\u{fffd} bank down", "? bank down"]);
    let mut with_hits = 0;
    for (text, (echoed, cli)) in asked.iter().zip(&answers) {
        assert_eq!(echoed, text);
        let response = app.admin(Method::GET, "/v1/errors").query(&[("q", text)]).send().await.unwrap();
        assert_eq!(response.status(), 200, "{text}");
        let body: Value = response.json().await.unwrap();
        let api: Vec<u64> = body["items"].as_array().unwrap().iter().map(|hit| hit["code"].as_u64().unwrap()).collect();
        assert_eq!(*cli, api, "{text}");
        with_hits += usize::from(!api.is_empty());
    }
    let compared = asked.len();
    assert!(with_hits * 10 >= compared * 9, "{with_hits} of {compared} questions found entries");
}

/// `feedwatch` run with these arguments and this standard input; it must succeed.
async fn cli(args: &[&str], input: &[u8]) -> String {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Written while the output is read: the answers fill the pipe long before the questions end.
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writing = tokio::spawn(async move { stdin.write_all(&input).await });
    let output = child.wait_with_output().await.unwrap();
    writing.await.unwrap().unwrap();
    assert!(output.status.success(), "{args:?}");
    String::from_utf8(output.stdout).unwrap()
}

/// The codes of a search's listing, one hit per line.
fn codes_listed(listing: &str) -> Vec<u64> {
    listing.lines().filter_map(|line| line.split_whitespace().next()?.parse().ok()).collect()
}

/// A question as long as agents paste (a customer's message with the error it quotes) is
/// searched; one past the limit is a clear 400 naming the field, from the API and the console.
#[tokio::test]
async fn a_long_question_is_searched_and_one_past_the_limit_is_refused_by_name() {
    let app = TestApp::spawn().await;
    let pasted = "my bank feed says the institution indicated the credentials are invalid ".repeat(7);
    let question = &pasted[..500];
    let response = app.admin(Method::GET, "/v1/errors").query(&[("q", question)]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["items"][0]["code"], 103, "{body}");
    let too_long = format!("{question}x");
    let response = app.admin(Method::GET, "/v1/errors").query(&[("q", too_long.as_str())]).send().await.unwrap();
    let problem = assert_problem(response, 400, "invalid_query_parameter").await;
    assert_eq!(problem["errors"][0]["field"], "q", "{problem}");
    assert_eq!(problem["errors"][0]["message"], "at most 500 characters", "{problem}");
}
