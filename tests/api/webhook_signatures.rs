//! Webhook signatures as receivers check them: every delivery verified by the `standardwebhooks`
//! package from PyPI (not by our own code), and a rotated secret signing beside the new one for
//! a day, then never again.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use chrono::{DateTime, Utc};
use feedwatch::webhook::{self, EventKind};
use serde_json::{Value, json};

use crate::support::log_lines_with;
use crate::webhooks::{
    Endpoint, Received, Reply, deliveries, delivery_job, emit, endpoint_of_a_tenant, get, rotate, tenant_event,
};

/// A Python that has the pinned `standardwebhooks`: `FEEDWATCH_WEBHOOK_PYTHON`, or a venv under
/// `.venv/webhooks` created on first use. Without it (no network to PyPI) the test fails: a
/// skipped signature check would look like a passing one.
fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        if let Ok(path) = std::env::var("FEEDWATCH_WEBHOOK_PYTHON") {
            return PathBuf::from(path);
        }
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let requirements = root.join("tests/webhooks/requirements.txt");
        let venv = root.join(".venv/webhooks");
        let python = venv.join("bin/python");
        let pinned = std::fs::read_to_string(&requirements).unwrap();
        let pin = pinned.lines().find(|line| line.starts_with("standardwebhooks==")).unwrap();
        let version = pin.trim_start_matches("standardwebhooks==").trim();
        let check = format!("import importlib.metadata as m; assert m.version('standardwebhooks') == '{version}'");
        let ready = || std::process::Command::new(&python).args(["-c", &check]).status().is_ok_and(|s| s.success());
        if !ready() {
            let made = std::process::Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
            assert!(made.is_ok_and(|s| s.success()), "python3 -m venv {} failed", venv.display());
            let installed = std::process::Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
                .arg(&requirements)
                .status();
            assert!(
                installed.is_ok_and(|s| s.success()) && ready(),
                "could not install {pin} from PyPI into {}; the signature test needs it (or set FEEDWATCH_WEBHOOK_PYTHON)",
                venv.display()
            );
        }
        python
    })
}

/// Runs tests/webhooks/verify.py on one received request: the payload it verified, or its error.
pub(crate) fn verify_with_standardwebhooks(secret: &str, received: &Received) -> Result<Value, String> {
    use std::io::Write;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks/verify.py");
    let mut child = std::process::Command::new(python())
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let input = json!({ "secret": secret, "headers": received.headers, "body": received.body });
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    if output.status.success() {
        Ok(serde_json::from_slice(&output.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test]
async fn deliveries_are_signed_so_the_standard_webhooks_library_verifies_them() {
    let Endpoint { app, tenant, key, receiver, created } =
        endpoint_of_a_tenant(Reply::Status(204), "/hooks?token=t1", &["refresh.completed"]).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    assert_eq!(created["tenant_id"], tenant.to_string());
    assert_eq!(created["events"], json!(["refresh.completed"]));
    assert_eq!(created["enabled"], true);

    let event = tenant_event(EventKind::RefreshCompleted, tenant);
    assert_eq!(emit(&app, &event).await, 1);
    let before = Utc::now().timestamp();
    assert_eq!(app.refresh_pool().run_until_idle().await, 1);

    let received = receiver.received();
    assert_eq!(received.len(), 1);
    let request = &received[0];
    let header = |name: &str| request.headers.get(name).map(String::as_str).unwrap_or_default();
    assert!(header("webhook-id").starts_with("msg_"), "{:?}", request.headers);
    let timestamp: i64 = header("webhook-timestamp").parse().unwrap();
    assert!((before - 5..=Utc::now().timestamp() + 5).contains(&timestamp));
    assert!(header("webhook-signature").starts_with("v1,"));
    assert_eq!(header("content-type"), "application/json");
    assert!(header("user-agent").starts_with("feedwatch-webhooks/"));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(body["type"], "refresh.completed");
    assert_eq!(body["data"], event.data);
    assert!(body["timestamp"].as_str().unwrap().parse::<DateTime<Utc>>().is_ok(), "{body}");

    let verified = verify_with_standardwebhooks(&secret, request).expect("standardwebhooks verifies the delivery");
    assert_eq!(verified, body);
    let tampered = Received { body: request.body.replace("healthy", "degraded"), ..request.clone() };
    assert!(verify_with_standardwebhooks(&secret, &tampered).is_err(), "an altered body fails");
    let other_secret = webhook::secret::generate();
    let wrong = secrecy::ExposeSecret::expose_secret(&other_secret).to_owned();
    assert!(verify_with_standardwebhooks(&wrong, request).is_err(), "another secret fails");

    let log = deliveries(&app, &key, created["id"].as_str().unwrap()).await;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0]["outcome"], "delivered");
    assert_eq!(log[0]["status_code"], 204);
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[0]["event_type"], "refresh.completed");
    assert_eq!(log[0]["message_id"], header("webhook-id"));
    assert_eq!(delivery_job(&app).await.1, "succeeded");

    // The secret is in the create response only: not in reads, lists, the database or logs.
    let id = created["id"].as_str().unwrap();
    for path in [format!("/v1/webhooks/{id}"), "/v1/webhooks".to_owned(), format!("/v1/webhooks/{id}/deliveries")] {
        let text = get(&app, &key, &path).await.text().await.unwrap();
        assert!(!text.contains(&secret[6..]) && !text.contains("secret"), "{path}: {text}");
    }
    let sealed: Vec<u8> =
        sqlx::query_scalar("select secret_sealed from webhook_endpoint").fetch_one(&app.pool).await.unwrap();
    assert!(!sealed.windows(16).any(|window| window == &secret.as_bytes()[6..22]));
    assert!(log_lines_with(&secret[6..]).is_empty(), "the secret was logged");
}

/// The `v1,<signature>` entries of a delivery's `webhook-signature` header.
fn signatures(received: &Received) -> Vec<String> {
    received.headers["webhook-signature"].split(' ').map(str::to_owned).collect()
}

#[tokio::test]
async fn a_rotated_secret_keeps_signing_beside_the_new_one_for_a_day() {
    let Endpoint { app, tenant, key, receiver, created } =
        endpoint_of_a_tenant(Reply::Status(204), "/hook", &["refresh.completed"]).await;
    let id = created["id"].as_str().unwrap();
    let old = created["secret"].as_str().unwrap().to_owned();

    let asked = Utc::now();
    let response = rotate(&app, &key, id).await;
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old, "{rotated}");
    assert_eq!(rotated["id"], created["id"]);
    assert_eq!(rotated["url"], created["url"]);
    let expires: DateTime<Utc> = rotated["previous_secret_expires_at"].as_str().unwrap().parse().unwrap();
    let day = chrono::TimeDelta::hours(24);
    assert!(expires >= asked + day && expires <= Utc::now() + day, "{expires}");

    // During the grace period: two signatures, the new secret's first; either secret verifies.
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    let pool = app.refresh_pool();
    assert_eq!(pool.run_until_idle().await, 1);
    let request = receiver.received()[0].clone();
    let both = signatures(&request);
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(both.iter().all(|signature| signature.starts_with("v1,")), "{both:?}");
    verify_with_standardwebhooks(&new, &request).expect("the new secret verifies");
    verify_with_standardwebhooks(&old, &request).expect("the previous secret still verifies");
    let only = |signature: &String| {
        let mut headers = request.headers.clone();
        headers.insert("webhook-signature".into(), signature.clone());
        Received { headers, body: request.body.clone() }
    };
    verify_with_standardwebhooks(&new, &only(&both[0])).expect("the first signature is the new secret's");
    verify_with_standardwebhooks(&old, &only(&both[1])).expect("the second is the previous secret's");
    let stranger = secrecy::ExposeSecret::expose_secret(&webhook::secret::generate()).to_owned();
    assert!(verify_with_standardwebhooks(&stranger, &request).is_err());

    // The secret shows in the rotation's response only.
    for path in [format!("/v1/webhooks/{id}"), "/v1/webhooks".to_owned()] {
        let text = get(&app, &key, &path).await.text().await.unwrap();
        assert!(!text.contains(&new[6..]) && !text.contains(&old[6..]), "{path}: {text}");
    }
    assert!(log_lines_with(&new[6..]).is_empty(), "the new secret was logged");

    // Once the grace period is over, the previous secret signs nothing.
    sqlx::query("update webhook_endpoint set previous_secret_expires_at = now() - interval '1 second'")
        .execute(&app.pool)
        .await
        .unwrap();
    emit(&app, &tenant_event(EventKind::RefreshCompleted, tenant)).await;
    assert_eq!(pool.run_until_idle().await, 1);
    let request = receiver.received()[1].clone();
    assert_eq!(signatures(&request).len(), 1, "{:?}", request.headers);
    verify_with_standardwebhooks(&new, &request).expect("the new secret verifies");
    assert!(verify_with_standardwebhooks(&old, &request).is_err(), "the previous secret has expired");

    // And housekeeping forgets it.
    feedwatch::housekeeping::run_once(&app.pool).await.unwrap();
    let kept: i64 =
        sqlx::query_scalar("select count(*) from webhook_endpoint where previous_secret_sealed is not null")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kept, 0);
}
