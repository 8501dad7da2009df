//! The helpdesk console's rules that need no browser: sessions for keys, the cookie's flags, form
//! tokens, idle and revoked sessions, tenant isolation, security headers. The browser tests
//! (`scripts/console-test`) drive the pages themselves.

use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use reqwest::{Response, StatusCode};

use crate::support::TestApp;

/// A browser's view of the console: a session cookie once signed in.
struct Browser<'a> {
    app: &'a TestApp,
    cookie: Option<String>,
}

impl<'a> Browser<'a> {
    fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None }
    }

    async fn sign_in(&mut self, key: &str) -> Response {
        let response = self.post_form("/console/sign-in", &[("key", key)], &[]).await;
        if let Some(set) = response.headers().get(SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_owned();
            self.cookie = Some(pair);
        }
        response
    }

    async fn get(&self, path: &str) -> Response {
        let mut request = self.app.anonymous(reqwest::Method::GET, path);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        request.send().await.unwrap()
    }

    async fn post_form(&self, path: &str, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Response {
        let mut request = self.app.anonymous(reqwest::Method::POST, path).form(fields);
        if let Some(cookie) = &self.cookie {
            request = request.header(COOKIE, cookie);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// The form token the page at `path` carries.
    async fn csrf(&self, path: &str) -> String {
        let page = self.get(path).await.text().await.unwrap();
        let start =
            page.find(r#"name="csrf" value=""#).expect("the page has a form token") + r#"name="csrf" value=""#.len();
        page[start..start + 64].to_owned()
    }

    fn session_hex(&self) -> String {
        self.cookie.as_deref().unwrap().split_once('=').unwrap().1.to_owned()
    }
}

fn location(response: &Response) -> &str {
    response.headers().get(LOCATION).map(|value| value.to_str().unwrap()).unwrap_or_default()
}

fn is_html(response: &Response) -> bool {
    response.headers().get(CONTENT_TYPE).is_some_and(|value| value.to_str().unwrap().starts_with("text/html"))
}

#[tokio::test]
async fn a_key_is_exchanged_for_a_session_whose_cookie_holds_neither_the_key_nor_its_stored_digest() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);

    let refused = browser.sign_in("fw_00000000000000000000000000000000_nonsense").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(refused.headers().get(SET_COOKIE).is_none());
    assert!(is_html(&refused));
    assert!(refused.text().await.unwrap().contains("not valid or has been revoked"));

    let accepted = browser.sign_in(&app.admin_key).await;
    assert_eq!(accepted.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&accepted), "/console");
    let set = accepted.headers().get(SET_COOKIE).unwrap().to_str().unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(set.contains(flag), "{set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP without a TLS proxy: {set}");
    let secret = app.admin_key.rsplit('_').next().unwrap();
    assert!(!set.contains(secret));

    let session = browser.session_hex();
    let stored: Vec<Vec<u8>> =
        sqlx::query_scalar("select id_hash from console_session").fetch_all(&app.pool).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(hex::encode(&stored[0]), session, "only a digest of the id is stored");

    let overview = browser.get("/console").await;
    assert_eq!(overview.status(), StatusCode::OK);
    let page = overview.text().await.unwrap();
    assert!(page.contains("Fleet overview"));
    assert!(!page.contains(secret) && !page.contains(&session), "neither key nor session id is in the page");
}

#[tokio::test]
async fn behind_a_tls_proxy_the_cookie_is_secure() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let response =
        browser.post_form("/console/sign-in", &[("key", &app.admin_key)], &[("x-forwarded-proto", "https")]).await;
    let set = response.headers().get(SET_COOKIE).unwrap().to_str().unwrap();
    assert!(set.contains("; Secure"), "{set}");

    let configured = TestApp::spawn_with(crate::support::Options {
        console: feedwatch::http::console::Settings { secure_cookies: true, ..Default::default() },
        ..Default::default()
    })
    .await;
    let response =
        Browser::new(&configured).post_form("/console/sign-in", &[("key", &configured.admin_key)], &[]).await;
    assert!(response.headers().get(SET_COOKIE).unwrap().to_str().unwrap().contains("; Secure"));
}

#[tokio::test]
async fn without_a_session_pages_send_the_agent_to_sign_in_and_back() {
    let app = TestApp::spawn().await;
    let browser = Browser::new(&app);
    let response = browser.get("/console/connections?state=healthy").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/console/sign-in?next=/console/connections%3Fstate%3Dhealthy");

    let mut browser = Browser::new(&app);
    let response = browser
        .post_form("/console/sign-in", &[("key", &app.admin_key), ("next", "https://evil.example/console")], &[])
        .await;
    assert_eq!(location(&response), "/console", "only console addresses are returned to");
    browser.cookie = None;
    let response = browser.sign_in(&app.admin_key).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn state_changing_forms_need_the_sessions_token() {
    let app = TestApp::spawn().await;
    let bank = app.sandbox_institution("healthy").await;
    let tenant = uuid::Uuid::new_v4();
    let tenant_key = app.key("tenant", Some(tenant)).await;
    let connection = app.connection(&tenant_key, bank, "Operating", "pass_good").await;
    let id = connection["id"].as_str().unwrap();
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_key).await;
    let refresh = format!("/console/connections/{id}/refresh");
    let queued = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from job where kind = 'refresh'")
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    let before = queued().await;

    for fields in [vec![], vec![("csrf", "0".repeat(64))]] {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let refused = browser.post_form(&refresh, &fields, &[]).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        assert!(is_html(&refused), "a page for people, not problem+json");
        assert!(refused.text().await.unwrap().contains("did not come from your console session"));
    }
    // Another session's token is not this one's.
    let mut other = Browser::new(&app);
    other.sign_in(&app.admin_key).await;
    let foreign = other.csrf("/console").await;
    let refused = browser.post_form(&refresh, &[("csrf", &foreign)], &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(queued().await, before, "nothing was enqueued by a refused form");

    let token = browser.csrf(&format!("/console/connections/{id}")).await;
    let done = browser.post_form(&refresh, &[("csrf", &token)], &[]).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert!(location(&done).starts_with(&format!("/console/connections/{id}?refresh=")));

    let refused = browser.post_form("/console/sign-out", &[], &[]).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn signing_out_idling_and_revoking_the_key_each_end_the_session() {
    let app = TestApp::spawn().await;
    let helpdesk = app.key("helpdesk", None).await;

    let mut browser = Browser::new(&app);
    browser.sign_in(&helpdesk).await;
    let token = browser.csrf("/console").await;
    let out = browser.post_form("/console/sign-out", &[("csrf", &token)], &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(out.headers().get(SET_COOKIE).unwrap().to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(browser.get("/console").await.status(), StatusCode::SEE_OTHER);
    let left: i64 = sqlx::query_scalar("select count(*) from console_session").fetch_one(&app.pool).await.unwrap();
    assert_eq!(left, 0);

    browser.sign_in(&helpdesk).await;
    assert_eq!(browser.get("/console").await.status(), StatusCode::OK);
    // Idle past the default 30 minutes (the clock moved, not the test).
    sqlx::query("update console_session set last_seen_at = now() - interval '31 minutes'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(browser.get("/console").await.status(), StatusCode::SEE_OTHER);

    browser.sign_in(&helpdesk).await;
    sqlx::query("update console_session set expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(browser.get("/console").await.status(), StatusCode::SEE_OTHER, "past its absolute end");

    browser.sign_in(&helpdesk).await;
    assert_eq!(browser.get("/console").await.status(), StatusCode::OK);
    let key_id = uuid::Uuid::parse_str(helpdesk.split('_').nth(1).unwrap()).unwrap();
    let revoked = app.admin(reqwest::Method::DELETE, &format!("/v1/api-keys/{key_id}")).send().await.unwrap();
    assert!(revoked.status().is_success(), "{}", revoked.status());
    assert_eq!(browser.get("/console").await.status(), StatusCode::SEE_OTHER, "a revoked key's session ends");
}

#[tokio::test]
async fn a_tenant_session_sees_only_its_tenant() {
    let app = TestApp::spawn().await;
    let bank = app.sandbox_institution("healthy").await;
    let (ours, theirs) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let our_key = app.key("tenant", Some(ours)).await;
    let their_key = app.key("tenant", Some(theirs)).await;
    let own = app.connection(&our_key, bank, "Our account", "pass_good").await;
    let other = app.connection(&their_key, bank, "Their account", "pass_good").await;
    let (own, other) = (own["id"].as_str().unwrap(), other["id"].as_str().unwrap());

    let mut browser = Browser::new(&app);
    browser.sign_in(&our_key).await;
    assert_eq!(browser.get(&format!("/console/connections/{own}")).await.status(), StatusCode::OK);
    let hidden = browser.get(&format!("/console/connections/{other}")).await;
    assert_eq!(hidden.status(), StatusCode::NOT_FOUND);
    assert!(is_html(&hidden));
    assert!(hidden.text().await.unwrap().contains("No connection has that id."));

    let list = browser.get(&format!("/console/connections?tenant_id={theirs}")).await.text().await.unwrap();
    assert!(!list.contains(other) && !list.contains("Their account"), "asking for their tenant finds nothing");
    let list = browser.get("/console/connections").await.text().await.unwrap();
    assert!(list.contains(own) && !list.contains(other));

    // Their connection's actions are as invisible as its page.
    let token = browser.csrf(&format!("/console/connections/{own}")).await;
    let refused = browser.post_form(&format!("/console/connections/{other}/pause"), &[("csrf", &token)], &[]).await;
    assert_eq!(refused.status(), StatusCode::NOT_FOUND);
    let paused: bool = sqlx::query_scalar("select paused from connection where id = $1::uuid")
        .bind(other)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert!(!paused);
}

#[tokio::test]
async fn console_pages_carry_the_security_headers_and_are_not_in_the_api_document() {
    let app = TestApp::spawn().await;
    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_key).await;
    let form_only = format!("/console/connections/{}/refresh", uuid::Uuid::new_v4());
    for path in ["/console/sign-in", "/console", "/console/errors?q=password", "/console/no-such-page", &form_only] {
        let response = browser.get(path).await;
        let headers = response.headers();
        let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(headers.get("x-frame-options").unwrap(), "DENY", "{path}");
        assert!(headers.get("referrer-policy").is_some(), "{path}");
        assert!(is_html(&response), "{path}");
    }
    assert_eq!(browser.get("/console/no-such-page").await.status(), StatusCode::NOT_FOUND);
    // A form's address opened as a page is the console's own 405 page, not the API's JSON.
    assert_eq!(browser.get(&form_only).await.status(), StatusCode::METHOD_NOT_ALLOWED);
    // The API's errors stay problem+json.
    let api = app.admin(reqwest::Method::GET, "/v1/no-such-thing").send().await.unwrap();
    assert_eq!(api.headers().get(CONTENT_TYPE).unwrap(), "application/problem+json");

    let document = serde_json::to_string(&feedwatch::http::openapi()).unwrap();
    assert!(!document.contains("/console"));
}

/// An entry's agent notes read as paragraphs: a blank line in the text starts a new `<p>`, every
/// paragraph escaped, and the API's JSON keeps the text as it was written.
#[tokio::test]
async fn agent_notes_render_one_escaped_paragraph_each() {
    let app = TestApp::spawn().await;
    let entry: serde_json::Value =
        app.admin(reqwest::Method::GET, "/v1/errors/102").send().await.unwrap().json().await.unwrap();
    let mut edit = entry["entry"].clone();
    let notes = "First, check the <b>bank</b> site.\n\nThen the timeline & the refresh log.";
    edit["agent_notes"] = serde_json::json!(notes);
    let response = app
        .admin(reqwest::Method::PUT, "/v1/errors/102")
        .header("if-match", "\"r1\"")
        .json(&edit)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let mut browser = Browser::new(&app);
    browser.sign_in(&app.admin_key).await;
    let page = browser.get("/console/errors/102").await.text().await.unwrap();
    let start = page.find(r#"<div id="agent-notes">"#).expect("the notes have their block");
    let block = &page[start..start + page[start..].find("</div>").unwrap()];
    assert_eq!(
        block,
        r#"<div id="agent-notes"><p>First, check the &lt;b&gt;bank&lt;/b&gt; site.</p><p>Then the timeline &amp; the refresh log.</p>"#
    );
    let entry: serde_json::Value =
        app.admin(reqwest::Method::GET, "/v1/errors/102").send().await.unwrap().json().await.unwrap();
    assert_eq!(entry["entry"]["agent_notes"], notes, "the JSON keeps the blank line");
}
