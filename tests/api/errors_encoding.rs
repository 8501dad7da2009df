//! Catalogue lookups in gzip for the clients that ask (browsers: the web front end and the
//! helpdesk console), compressed once per entry rather than per request: the coding follows
//! `Accept-Encoding` as RFC 9110 §12.5.3 reads it, and each body has its own ETag, as has every
//! body the compression layer codes.

use std::io::Read;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::support::TestApp;

/// What every current browser sends.
const BROWSER: &str = "gzip, deflate, br, zstd";

/// A lookup's status, headers and body as sent, with `accept_encoding` if any.
async fn fetch(app: &TestApp, method: Method, path: &str, accept_encoding: Option<&str>) -> (u16, HeaderMap, Vec<u8>) {
    let mut request = app.admin(method, path);
    if let Some(accept_encoding) = accept_encoding {
        request = request.header("accept-encoding", accept_encoding);
    }
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(body).read_to_end(&mut text).unwrap();
    text
}

/// The body as the client reads it: gzip undone, any other coding a failure.
fn decoded(headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
    match headers.get("content-encoding").map(|value| value.to_str().unwrap()) {
        None => body.to_vec(),
        Some("gzip") => gunzip(body),
        Some(other) => panic!("a coding nobody asked for: {other}"),
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// `Vary` names Accept-Encoding once, whoever else adds a `Vary` line.
fn varies_on_accept_encoding_once(headers: &HeaderMap) -> bool {
    let values = headers.get_all("vary").iter().map(|value| value.to_str().unwrap().to_ascii_lowercase());
    values
        .flat_map(|value| value.split(',').map(|name| name.trim().to_owned()).collect::<Vec<_>>())
        .filter(|name| name == "accept-encoding")
        .count()
        == 1
}

#[tokio::test]
async fn a_browser_gets_the_entry_in_gzip_with_an_etag_of_its_own() {
    let app = TestApp::spawn().await;
    let (status, plain_headers, plain) = fetch(&app, Method::GET, "/v1/errors/102", None).await;
    assert_eq!(status, 200);
    let (status, headers, body) = fetch(&app, Method::GET, "/v1/errors/102", Some(BROWSER)).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-encoding"), Some("gzip"));
    assert_eq!(header(&headers, "content-type"), Some("application/json"));
    assert_eq!(header(&headers, "etag"), Some("\"r1-gzip\""));
    assert!(varies_on_accept_encoding_once(&headers), "{headers:?}");
    assert_eq!(header(&headers, "content-length"), Some(body.len().to_string().as_str()));
    assert!(body.len() * 2 < plain.len(), "{} bytes of {}", body.len(), plain.len());
    assert_eq!(gunzip(&body), plain, "the gzip body is the identity body, byte for byte");

    assert_eq!(header(&plain_headers, "content-encoding"), None);
    assert_eq!(header(&plain_headers, "etag"), Some("\"r1\""));
    assert!(varies_on_accept_encoding_once(&plain_headers), "the identity answer varies too: {plain_headers:?}");
    let (_, again, second) = fetch(&app, Method::GET, "/v1/errors/102", Some(BROWSER)).await;
    assert_eq!((second, header(&again, "etag")), (body, Some("\"r1-gzip\"")), "compressed once, answered alike");
}

#[tokio::test]
async fn the_coding_follows_accept_encoding_as_rfc_9110_reads_it() {
    let app = TestApp::spawn().await;
    let (_, _, plain) = fetch(&app, Method::GET, "/v1/errors/102", None).await;
    for (accept_encoding, gzip) in [
        (Some("gzip;q=0"), false),
        (Some("identity"), false),
        (None, false),
        (Some(""), false),
        (Some("*"), true),
        (Some("*;q=0"), false),
        (Some("*, gzip;q=0"), false),
        // The compression layer alone would gzip this one (it takes the weight that allows).
        (Some("gzip, gzip;q=0"), false),
        (Some("br, zstd"), false),
        (Some("identity;q=0, gzip;q=0.5"), true),
        (Some("gzip;q=0.5, identity"), false),
        (Some("GZIP;Q=0.5"), true),
        (Some("x-gzip"), true),
        (Some("gzip;q=2, br;;;, ===, \"gzip\""), false),
    ] {
        let (status, headers, body) = fetch(&app, Method::GET, "/v1/errors/102", accept_encoding).await;
        assert_eq!(status, 200, "{accept_encoding:?}");
        let expected = if gzip { (Some("gzip"), Some("\"r1-gzip\"")) } else { (None, Some("\"r1\"")) };
        assert_eq!((header(&headers, "content-encoding"), header(&headers, "etag")), expected, "{accept_encoding:?}");
        assert!(varies_on_accept_encoding_once(&headers), "{accept_encoding:?}: {headers:?}");
        assert_eq!(decoded(&headers, &body), plain, "{accept_encoding:?}");
    }
}

#[tokio::test]
async fn alias_and_reason_lookups_are_compressed_too() {
    let app = TestApp::spawn().await;
    for path in ["plaid:ITEM_LOGIN_REQUIRED", "ITEM_LOGIN_REQUIRED", "ofx:15500", "credentials_rejected", "yodlee:407"]
    {
        let path = format!("/v1/errors/{path}");
        let (_, plain_headers, plain) = fetch(&app, Method::GET, &path, None).await;
        let (status, headers, body) = fetch(&app, Method::GET, &path, Some(BROWSER)).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(header(&headers, "content-encoding"), Some("gzip"), "{path}");
        assert_eq!(gunzip(&body), plain, "{path}");
        let (plain_tag, tag) = (header(&plain_headers, "etag").unwrap(), header(&headers, "etag").unwrap());
        assert_ne!(plain_tag, tag, "{path}");
        assert_eq!(tag, format!("{}-gzip\"", plain_tag.trim_end_matches('"')), "{path}");
    }
    let (_, headers, body) = fetch(&app, Method::GET, "/v1/errors/yodlee:407", Some(BROWSER)).await;
    let lookup: Value = serde_json::from_slice(&decoded(&headers, &body)).unwrap();
    assert_eq!(
        (&lookup["matched"]["by"], &lookup["matched"]["alias"]["namespace"]),
        (&json!("alias"), &json!("yodlee"))
    );
}

#[tokio::test]
async fn head_an_ambiguous_code_and_an_unknown_one_stay_right_for_a_browser() {
    let app = TestApp::spawn().await;
    let (_, _, gzip_body) = fetch(&app, Method::GET, "/v1/errors/102", Some(BROWSER)).await;
    let (status, headers, body) = fetch(&app, Method::HEAD, "/v1/errors/102", Some(BROWSER)).await;
    assert_eq!(status, 200);
    assert_eq!((header(&headers, "content-encoding"), header(&headers, "etag")), (Some("gzip"), Some("\"r1-gzip\"")));
    assert_eq!(header(&headers, "content-length"), Some(gzip_body.len().to_string().as_str()));
    assert!(body.is_empty());
    let (_, _, plain) = fetch(&app, Method::GET, "/v1/errors/102", None).await;
    let (_, headers, _) = fetch(&app, Method::HEAD, "/v1/errors/102", None).await;
    assert_eq!((header(&headers, "content-encoding"), header(&headers, "etag")), (None, Some("\"r1\"")));
    assert_eq!(header(&headers, "content-length"), Some(plain.len().to_string().as_str()));

    for accept_encoding in [Some(BROWSER), None] {
        let (status, headers, body) = fetch(&app, Method::GET, "/v1/errors/402", accept_encoding).await;
        assert_eq!(status, 300, "{accept_encoding:?}");
        let ambiguous: Value = serde_json::from_slice(&decoded(&headers, &body)).unwrap();
        assert!(ambiguous["candidates"].as_array().unwrap().len() >= 2, "{ambiguous}");
        assert_eq!(header(&headers, "etag"), None);

        let (status, headers, body) = fetch(&app, Method::GET, "/v1/errors/ITEM_LOGIN_REQIRED", accept_encoding).await;
        assert_eq!(status, 404, "{accept_encoding:?}");
        assert_eq!(header(&headers, "content-type"), Some("application/problem+json"));
        let problem: Value = serde_json::from_slice(&decoded(&headers, &body)).unwrap();
        assert_eq!(problem["code"], "unknown_error_code");
        assert_eq!(problem["suggestions"][0], "plaid:ITEM_LOGIN_REQUIRED");
    }
}

#[tokio::test]
async fn an_edit_takes_either_bodys_etag_and_both_bodies_show_it() {
    let app = TestApp::spawn().await;
    let (_, headers, body) = fetch(&app, Method::GET, "/v1/errors/102", Some(BROWSER)).await;
    let etag = header(&headers, "etag").unwrap().to_owned();
    let lookup: Value = serde_json::from_slice(&gunzip(&body)).unwrap();
    let mut entry = lookup["entry"].clone();
    entry["user_message"] = json!("Your bank is having trouble right now. We will keep trying; nothing to do.");

    let response =
        app.admin(Method::PUT, "/v1/errors/102").header("if-match", &etag).json(&entry).send().await.unwrap();
    assert_eq!(response.status(), 200, "{etag}: {}", response.text().await.unwrap());
    let (_, headers, body) = fetch(&app, Method::GET, "/v1/errors/102", Some(BROWSER)).await;
    assert_eq!(header(&headers, "etag"), Some("\"r2-gzip\""));
    let lookup: Value = serde_json::from_slice(&gunzip(&body)).unwrap();
    assert_eq!(lookup["entry"]["user_message"], entry["user_message"], "no gzip body of the old revision");
    let (_, headers, plain) = fetch(&app, Method::GET, "/v1/errors/plaid:INSTITUTION_DOWN", None).await;
    let (_, _, gzip) = fetch(&app, Method::GET, "/v1/errors/plaid:INSTITUTION_DOWN", Some(BROWSER)).await;
    assert_eq!((header(&headers, "etag"), gunzip(&gzip)), (Some("\"r2\""), plain));

    let stale = app.admin(Method::PUT, "/v1/errors/102").header("if-match", &etag).json(&entry).send().await.unwrap();
    assert_eq!(stale.status(), 412);
}

/// Routes that leave the coding to the compression layer (a connection's page) get the same rule
/// as the lookup: the gzip body has an ETag of its own, and a write takes either ETag.
#[tokio::test]
async fn a_body_the_layer_gzips_has_an_etag_of_its_own_and_a_write_takes_it() {
    let app = TestApp::spawn().await;
    let fed = app.fed_account().await;
    // Enough accounts that the page passes the layer's floor (`encoding::LAYER_MIN_BYTES`).
    for bank_account_id in ["savings", "card", "reserve"] {
        let listed =
            crate::support::reported_account(bank_account_id, feedwatch::connection::AccountKind::Savings, "Savings");
        feedwatch::connection::store::upsert_account(&app.pool, fed.connection, &listed).await.unwrap();
    }
    let key = fed.tenant_key;
    let path = format!("/v1/connections/{}", fed.connection);
    let read = |accept_encoding: Option<&'static str>| {
        let mut request = app.anonymous(Method::GET, &path).bearer_auth(&key);
        if let Some(accept_encoding) = accept_encoding {
            request = request.header("accept-encoding", accept_encoding);
        }
        request.send()
    };
    let plain = read(None).await.unwrap();
    let plain_etag = header(plain.headers(), "etag").unwrap().to_owned();
    let plain_body = plain.bytes().await.unwrap().to_vec();
    assert!(plain_body.len() > usize::from(feedwatch::http::encoding::LAYER_MIN_BYTES), "{}", plain_body.len());
    let coded = read(Some(BROWSER)).await.unwrap();
    let coded_headers = coded.headers().clone();
    assert_eq!(header(&coded_headers, "content-encoding"), Some("gzip"));
    let coded_etag = header(&coded_headers, "etag").unwrap().to_owned();
    assert_eq!(coded_etag, format!("{}-gzip\"", plain_etag.trim_end_matches('"')));
    assert_eq!(gunzip(&coded.bytes().await.unwrap()), plain_body, "the same page, coded");

    let patch = app
        .anonymous(Method::PATCH, &path)
        .bearer_auth(&key)
        .header("if-match", &coded_etag)
        .json(&json!({ "display_name": "Main account" }))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200, "the gzip body's ETag names the version it showed");
    let stale = app
        .anonymous(Method::PATCH, &path)
        .bearer_auth(&key)
        .header("if-match", &coded_etag)
        .json(&json!({ "display_name": "Again" }))
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 412, "and only that version");
}

/// A body under the layer's floor (`encoding::LAYER_MIN_BYTES`) goes as it is: gzip would save
/// no packet on it, only CPU.
#[tokio::test]
async fn a_small_body_is_not_compressed_for_a_browser() {
    let app = TestApp::spawn().await;
    let (status, headers, body) = fetch(&app, Method::GET, "/v1/errors/no-such-code", Some(BROWSER)).await;
    assert_eq!(status, 404);
    assert!(body.len() > 32 && body.len() < usize::from(feedwatch::http::encoding::LAYER_MIN_BYTES), "{}", body.len());
    assert_eq!(header(&headers, "content-encoding"), None);
    let problem: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem["code"], "unknown_error_code");
}
