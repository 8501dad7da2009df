//! Faults the service must ride out by itself: its private PostgreSQL dying under load,
//! restarts on a directory another instance still holds, a database that answers with errors.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::operations::{start_serve, terminate};

/// A data directory of its own under the temporary directory (reachable by the `postgres` user
/// when the tests run as root).
fn private_data_dir(name: &str) -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!("feedwatch-{name}-{}", uuid::Uuid::new_v4().simple()));
    let data_dir = dir.join("postgres");
    let text = data_dir.to_str().unwrap().to_owned();
    (dir, text)
}

fn postmaster_pid(data_dir: &str) -> Option<u32> {
    let text = std::fs::read_to_string(Path::new(data_dir).join("postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

fn process_exists(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| !stat.contains(") Z "))
}

fn kill(signal: &str, pid: u32) {
    let status = std::process::Command::new("kill").args([signal, &pid.to_string()]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Polls `check` every 20 ms until it holds or `limit` passes; returns how long it took.
async fn within<F, Fut>(limit: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn ready(client: &reqwest::Client, addr: &str) -> bool {
    let response = client.get(format!("http://{addr}/readyz")).timeout(Duration::from_secs(2)).send().await;
    response.is_ok_and(|response| response.status() == 200)
}

#[tokio::test]
async fn a_killed_private_postgres_comes_back_by_itself_and_loses_no_acknowledged_write() {
    let (dir, data_dir) = private_data_dir("crash");
    let (mut serve, addr, lines) = start_serve(&[], &["--data-dir", &data_dir, "--no-demo"]);
    let key =
        lines.iter().find(|line| line.contains("first admin key")).unwrap().rsplit(' ').next().unwrap().to_owned();
    let client = reqwest::Client::new();
    let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
    let statuses = Arc::new(Mutex::new(Vec::new()));
    let stop = tokio_util::sync::CancellationToken::new();
    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let (client, addr, key) = (client.clone(), addr.clone(), key.clone());
            let (acknowledged, statuses, stop) = (Arc::clone(&acknowledged), Arc::clone(&statuses), stop.clone());
            tokio::spawn(async move {
                let mut written = 0;
                while !stop.is_cancelled() {
                    let response = client
                        .post(format!("http://{addr}/v1/api-keys"))
                        .bearer_auth(&key)
                        .json(&json!({ "role": "helpdesk", "label": format!("writer {writer}") }))
                        .timeout(Duration::from_secs(10))
                        .send()
                        .await;
                    let Ok(response) = response else { continue };
                    let status = response.status().as_u16();
                    if status == 201 {
                        let body: Value = response.json().await.unwrap();
                        acknowledged.lock().unwrap().insert(body["id"].as_str().unwrap().to_owned());
                        written += 1;
                    } else {
                        statuses.lock().unwrap().push(status);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                written
            })
        })
        .collect();
    within(Duration::from_secs(30), "writes are acknowledged", || async { acknowledged.lock().unwrap().len() >= 20 })
        .await;

    let postmaster = postmaster_pid(&data_dir).expect("the private cluster's postmaster.pid");
    kill("-KILL", postmaster);
    within(Duration::from_secs(5), "readiness notices the crash", || async { !ready(&client, &addr).await }).await;
    let recovered =
        within(Duration::from_secs(10), "readiness returns", || async { ready(&client, &addr).await }).await;
    let before = acknowledged.lock().unwrap().len();
    within(Duration::from_secs(10), "writes resume", || async { acknowledged.lock().unwrap().len() >= before + 20 })
        .await;
    stop.cancel();
    for writer in writers {
        writer.await.unwrap();
    }
    let new_postmaster = postmaster_pid(&data_dir).unwrap();
    assert_ne!(new_postmaster, postmaster, "a new postmaster runs");
    eprintln!("readiness returned {recovered:?} after the kill; refusals while down: {:?}", statuses.lock().unwrap());

    let ids = acknowledged.lock().unwrap().clone();
    let listed: BTreeSet<String> = list_key_ids(&client, &addr, &key).await;
    let lost: Vec<_> = ids.difference(&listed).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged writes lost: {lost:?}", lost.len(), ids.len());

    assert!(terminate(&mut serve).success());
    assert!(!process_exists(new_postmaster), "the restarted cluster stops with feedwatch");
    let _ = std::fs::remove_dir_all(&dir);
}

async fn list_key_ids(client: &reqwest::Client, addr: &str, key: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let mut url = format!("http://{addr}/v1/api-keys?limit=100");
    loop {
        let response = client.get(&url).bearer_auth(key).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        for item in body["items"].as_array().unwrap() {
            ids.insert(item["id"].as_str().unwrap().to_owned());
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => url = format!("http://{addr}/v1/api-keys?limit=100&cursor={cursor}"),
            None => return ids,
        }
    }
}
