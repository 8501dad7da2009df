//! The demo sandbox bank on a loopback listener of its own: never on the API's port, reached by
//! the instance's own refreshes at its real address, and bounded like the API's listener.

use std::time::{Duration, Instant};

use feedwatch::ofx::{self, OfxRequest, OfxVersion, Password, RequestMessage, SignonRequest};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use crate::reliability::{closed_within, short_connection_limits};
use crate::support::{Options, TestApp, assert_problem};

/// A Direct Connect request for the account list, signed on with `password`.
fn account_list_request(password: &str) -> String {
    let now = chrono::Utc::now().fixed_offset();
    ofx::write_request(&OfxRequest {
        version: OfxVersion::V102,
        client_date: now,
        signon: SignonRequest {
            user_id: "user_good".into(),
            password: Password::new(password),
            language: "ENG".into(),
            org: None,
            fid: None,
            app_id: "QWIN".into(),
            app_ver: "2700".into(),
            client_uid: None,
        },
        messages: vec![RequestMessage::AccountList { trnuid: "1".into(), since: now }],
    })
}

#[tokio::test]
async fn the_sandbox_bank_has_its_own_listener_and_the_api_port_no_longer_serves_it() {
    // Two seconds: the healthy exchange below must finish inside it on a busy debug build.
    let options = Options { workers: 1, request_timeout: Duration::from_secs(2), ..short_connection_limits(512) };
    let app = TestApp::spawn_with(options).await;
    let sandbox = app.sandbox_url();
    assert_ne!(sandbox, app.url(""), "the sandbox bank shares the API's port");
    assert!(sandbox.starts_with("http://127.0.0.1:"), "not on loopback: {sandbox}");

    // The old paths on the API port are routes like any other that do not exist.
    assert_problem(app.anonymous(reqwest::Method::GET, "/sandbox-bank").send().await.unwrap(), 404, "route_not_found")
        .await;
    let old_exchange = app
        .anonymous(reqwest::Method::POST, "/sandbox-bank/ofx/healthy")
        .header("content-type", "application/x-ofx")
        .body(account_list_request("pass_good"))
        .send()
        .await
        .unwrap();
    assert_problem(old_exchange, 404, "route_not_found").await;

    // The sandbox listener lists its banks and answers OFX.
    let listed: Value = app.client.get(format!("{sandbox}/")).send().await.unwrap().json().await.unwrap();
    assert!(listed.as_array().unwrap().iter().any(|bank| bank["path"] == "/ofx/healthy"), "{listed}");
    let answer = app
        .client
        .post(format!("{sandbox}/ofx/healthy"))
        .header("content-type", "application/x-ofx")
        .body(account_list_request("pass_good"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(answer.text().await.unwrap().contains("<ACCTINFO>"));

    // A stalled exchange ends with the gateway's 504 at the request timeout, as on the API port.
    let started = Instant::now();
    let stalled = app
        .client
        .post(format!("{sandbox}/ofx/healthy"))
        .body(account_list_request("error_712"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(stalled.status(), 504);
    assert!(started.elapsed() < Duration::from_secs(5), "the stall was held {:?}", started.elapsed());

    // The instance's own workers reach the sandbox at the address it listens on.
    let tenant = app.key("tenant", Some(uuid::Uuid::new_v4())).await;
    let bank = app.sandbox_institution("healthy").await;
    let created = app.connection(&tenant, bank, "Operating", "pass_good").await;
    let path = format!("/v1/connections/{}", created["id"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let view: Value =
            app.anonymous(reqwest::Method::GET, &path).bearer_auth(&tenant).send().await.unwrap().json().await.unwrap();
        if view["state"] == "healthy" {
            break;
        }
        assert!(Instant::now() < deadline, "the connection never refreshed against the sandbox: {view}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_slow_header_flood_on_the_sandbox_listener_is_bounded() {
    let app = TestApp::spawn_with(short_connection_limits(512)).await;
    let sandbox_addr = app.instance().sandbox_addr.unwrap();
    let mut flood = Vec::new();
    for _ in 0..300 {
        let mut socket = tokio::net::TcpStream::connect(sandbox_addr).await.unwrap();
        socket.write_all(b"POST /ofx/healthy HTTP/1.1\r\nHost: bank\r\nX-Slow: ").await.unwrap();
        flood.push(socket);
    }
    let fresh = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(fresh.get(format!("http://{sandbox_addr}/")).send().await.unwrap().status(), 200);
        assert_eq!(app.anonymous(reqwest::Method::GET, "/healthz").send().await.unwrap().status(), 200);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "two requests during the flood took {took:?}");
    }
    let started = Instant::now();
    for socket in &mut flood {
        assert!(closed_within(socket, Duration::from_secs(5)).await, "a slow header was held past its timeout");
    }
    assert!(started.elapsed() < Duration::from_secs(5));
}
