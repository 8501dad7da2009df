//! Hardening every route shares: failed-authentication throttling, input hygiene, and the
//! security headers.

use std::time::Duration;

use feedwatch::auth::throttle::ThrottleSettings;
use reqwest::Method;

use crate::support::{Options, TestApp, assert_problem, log_lines_with};

fn wrong_key() -> String {
    secrecy::ExposeSecret::expose_secret(&feedwatch::auth::NewKey::generate().text).to_owned()
}

/// The id part of a key's text, as the logs spell a UUID.
fn key_id(key: &str) -> String {
    feedwatch::auth::PresentedKey::parse(key).unwrap().id.to_string()
}

#[tokio::test]
async fn a_burst_of_wrong_keys_is_throttled_with_retry_after_and_logged_without_the_key() {
    let throttle = ThrottleSettings { burst: 3, refill: Duration::from_secs(60) };
    let app = TestApp::spawn_with(Options { auth_throttle: throttle, ..Options::default() }).await;
    let guesses: Vec<String> = (0..3).map(|_| wrong_key()).collect();
    for guess in &guesses {
        let response = app.client.get(app.url("/v1/connections")).bearer_auth(guess).send().await.unwrap();
        assert_problem(response, 401, "invalid_credentials").await;
    }
    let next = wrong_key();
    let response = app.client.get(app.url("/v1/connections")).bearer_auth(&next).send().await.unwrap();
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let problem = assert_problem(response, 429, "too_many_failed_attempts").await;
    assert_eq!(problem["retry_after"], retry_after);
    // While throttled, keys are not even looked at, so a guess cannot succeed either.
    let response = app.admin(Method::GET, "/v1/connections").send().await.unwrap();
    assert_problem(response, 429, "too_many_failed_attempts").await;
    // Routes that need no key stay open.
    assert_eq!(app.anonymous(Method::GET, "/healthz").send().await.unwrap().status(), 200);

    let logged = log_lines_with("authentication failed");
    let ours: Vec<&String> =
        logged.iter().filter(|line| guesses.iter().any(|guess| line.contains(&key_id(guess)))).collect();
    assert_eq!(ours.len(), 3, "each failed attempt is logged once: {logged:?}");
    for line in &ours {
        assert!(line.contains("127.0.0.1"), "the client's address is logged: {line}");
    }
    for guess in guesses.iter().chain([&next]) {
        let secret = guess.rsplit('_').next().unwrap();
        assert!(crate::support::all_logs().find(secret).is_none(), "a key's secret reached the logs");
    }
}

#[tokio::test]
async fn a_missing_key_counts_as_a_failed_attempt() {
    let throttle = ThrottleSettings { burst: 2, refill: Duration::from_secs(60) };
    let app = TestApp::spawn_with(Options { auth_throttle: throttle, ..Options::default() }).await;
    for _ in 0..2 {
        assert_problem(app.anonymous(Method::GET, "/v1/connections").send().await.unwrap(), 401, "missing_credentials")
            .await;
    }
    let response = app.anonymous(Method::GET, "/v1/connections").send().await.unwrap();
    assert_problem(response, 429, "too_many_failed_attempts").await;
}

#[tokio::test]
async fn valid_keys_never_spend_the_burst() {
    let throttle = ThrottleSettings { burst: 2, refill: Duration::from_secs(60) };
    let app = TestApp::spawn_with(Options { auth_throttle: throttle, ..Options::default() }).await;
    for _ in 0..20 {
        assert_eq!(app.admin(Method::GET, "/v1/connections").send().await.unwrap().status(), 200);
    }
}
