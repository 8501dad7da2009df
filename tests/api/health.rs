//! Fleet health: the summary agrees with a brute-force count, staleness is counted, and the
//! connection filters dashboards use run on indexes.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::support::{TestApp, assert_problem};

async fn summary(app: &TestApp, key: &str, query: &str) -> Value {
    let response =
        app.anonymous(Method::GET, &format!("/v1/health/summary{query}")).bearer_auth(key).send().await.unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

/// What the summary should say, counted row by row from the connection table.
struct BruteForce {
    by_state: BTreeMap<String, i64>,
    by_code: BTreeMap<i64, i64>,
    stale: i64,
    total: i64,
    failing_by_institution: BTreeMap<String, i64>,
}

async fn brute_force(app: &TestApp, tenant: Option<Uuid>, institution: Option<Uuid>) -> BruteForce {
    let rows: Vec<(String, Option<i32>, bool, Uuid)> = sqlx::query_as(
        "select state, error_code, stale, institution_id from connection
         where ($1::uuid is null or tenant_id = $1) and ($2::uuid is null or institution_id = $2)",
    )
    .bind(tenant)
    .bind(institution)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let mut counted = BruteForce {
        by_state: [
            "healthy",
            "syncing",
            "degraded",
            "needs_user_action",
            "bank_issue",
            "provider_issue",
            "disconnected",
        ]
        .into_iter()
        .map(|state| (state.to_owned(), 0))
        .collect(),
        by_code: BTreeMap::new(),
        stale: 0,
        total: 0,
        failing_by_institution: BTreeMap::new(),
    };
    for (state, code, stale, institution) in rows {
        counted.total += 1;
        if ["degraded", "needs_user_action", "bank_issue", "provider_issue"].contains(&state.as_str()) {
            *counted.failing_by_institution.entry(institution.to_string()).or_default() += 1;
        }
        *counted.by_state.get_mut(&state).unwrap() += 1;
        if let Some(code) = code {
            *counted.by_code.entry(i64::from(code)).or_default() += 1;
        }
        counted.stale += i64::from(stale);
    }
    counted
}

fn assert_agrees(summary: &Value, expected: &BruteForce, what: &str) {
    assert_eq!(summary["connections"], expected.total, "{what}: total in {summary}");
    let by_state: BTreeMap<String, i64> = serde_json::from_value(summary["by_state"].clone()).unwrap();
    assert_eq!(by_state, expected.by_state, "{what}: by state");
    let by_code: BTreeMap<i64, i64> = summary["by_error_code"]
        .as_array()
        .unwrap()
        .iter()
        .map(|count| (count["code"].as_i64().unwrap(), count["connections"].as_i64().unwrap()))
        .collect();
    assert_eq!(by_code, expected.by_code, "{what}: by error code");
    assert_eq!(summary["stale"]["connections"], expected.stale, "{what}: stale");
    let failing: BTreeMap<String, i64> = summary["failing_institutions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|institution| (institution["id"].as_str().unwrap().to_owned(), institution["failing"].as_i64().unwrap()))
        .collect();
    assert_eq!(failing, expected.failing_by_institution, "{what}: failing institutions");
}

#[tokio::test]
async fn the_summary_agrees_with_a_brute_force_count_after_a_random_mix_of_outcomes() {
    let app = TestApp::spawn().await;
    let mut rng = StdRng::seed_from_u64(20261202);
    let tenants: Vec<(Uuid, String)> = {
        let mut tenants = Vec::new();
        for _ in 0..3 {
            let id = Uuid::new_v4();
            tenants.push((id, app.key("tenant", Some(id)).await));
        }
        tenants
    };
    let banks = [
        app.sandbox_institution("healthy").await,
        app.sandbox_institution("rejecting").await,
        app.sandbox_institution("maintenance").await,
    ];
    let passwords = ["pass_good", "pass_good", "error_103", "error_185", "error_102", "error_324", "error_705"];
    let mut ids = Vec::new();
    for n in 0..30 {
        let (_, key) = &tenants[rng.random_range(0..tenants.len())];
        let bank = banks[rng.random_range(0..banks.len())];
        let password = passwords[rng.random_range(0..passwords.len())];
        let connection = app.connection(key, bank, &format!("Account {n}"), password).await;
        ids.push((connection["id"].as_str().unwrap().to_owned(), key.clone()));
    }
    let pool = app.refresh_pool();
    pool.run_until_idle().await;
    // Some users disconnect; some connections have not succeeded for days.
    for (id, key) in ids.iter().take(4) {
        let gone =
            app.anonymous(Method::DELETE, &format!("/v1/connections/{id}")).bearer_auth(key).header("if-match", "*");
        assert_eq!(gone.send().await.unwrap().status(), 204);
    }
    sqlx::query("update connection set last_success_at = now() - interval '5 days' where id = any($1::uuid[])")
        .bind(ids.iter().skip(4).step_by(5).map(|(id, _)| id.parse::<Uuid>().unwrap()).collect::<Vec<_>>())
        .execute(&app.pool)
        .await
        .unwrap();
    feedwatch::refresh::schedule::degrade_stale(&app.pool, std::time::Duration::from_secs(48 * 3600)).await.unwrap();

    let mix = brute_force(&app, None, None).await;
    assert!(mix.by_code.len() >= 3 && mix.failing_by_institution.len() >= 2 && mix.stale > 0, "a varied fleet");
    // Before any rollup every count is still pending, after it none is: both must agree.
    for round in ["pending deltas", "rolled up"] {
        assert_agrees(&summary(&app, &app.admin_key, "?top=100").await, &brute_force(&app, None, None).await, round);
        for bank in banks {
            let scoped = summary(&app, &app.admin_key, &format!("?institution_id={bank}")).await;
            assert_agrees(&scoped, &brute_force(&app, None, Some(bank)).await, round);
        }
        for (tenant, key) in &tenants {
            let own = summary(&app, key, "?top=100").await;
            assert_agrees(&own, &brute_force(&app, Some(*tenant), None).await, round);
            assert!(own["queue"].is_null(), "the queue is fleet-wide: tenants do not see it");
        }
        assert!(feedwatch::health::store::rollup(&app.pool).await.unwrap().is_some());
    }
    let pending: i64 = sqlx::query_scalar("select count(*) from health_delta").fetch_one(&app.pool).await.unwrap();
    assert_eq!(pending, 0, "the rollup moved every delta");
    let fleet = summary(&app, &app.admin_key, "").await;
    assert!(fleet["queue"]["available"].is_i64() && fleet["queue"]["running"] == 0, "{fleet}");
    assert!(fleet["stale"]["connections"].as_i64().unwrap() > 0, "the backdated connections are stale: {fleet}");
    assert_eq!(fleet["stale"]["stale_after_seconds"], 48 * 3600);
}

#[tokio::test]
async fn a_success_clears_staleness_and_a_tenant_cannot_read_another_tenants_summary() {
    let app = TestApp::spawn().await;
    let tenant = Uuid::new_v4();
    let key = app.key("tenant", Some(tenant)).await;
    let bank = app.sandbox_institution("healthy").await;
    let id = app.connection(&key, bank, "Checking", "pass_good").await["id"].as_str().unwrap().to_owned();
    let pool = app.refresh_pool();
    pool.run_until_idle().await;
    sqlx::query("update connection set last_success_at = now() - interval '3 days' where id = $1::uuid")
        .bind(&id)
        .execute(&app.pool)
        .await
        .unwrap();
    feedwatch::refresh::schedule::degrade_stale(&app.pool, std::time::Duration::from_secs(48 * 3600)).await.unwrap();
    let stale = summary(&app, &key, "").await;
    assert_eq!(stale["stale"]["connections"], 1, "{stale}");
    assert_eq!(stale["by_state"]["degraded"], 1);
    assert_eq!(stale["failing_institutions"][0]["id"], bank.to_string());

    let refreshed = app.anonymous(Method::POST, &format!("/v1/connections/{id}/refresh")).bearer_auth(&key).send();
    assert_eq!(refreshed.await.unwrap().status(), 202);
    pool.run_until_idle().await;
    let fresh = summary(&app, &key, "").await;
    assert_eq!(fresh["stale"]["connections"], 0, "{fresh}");
    assert_eq!(fresh["by_state"]["healthy"], 1);

    let other = app.key("tenant", Some(Uuid::new_v4())).await;
    let theirs = summary(&app, &other, &format!("?tenant_id={tenant}")).await;
    assert_eq!(theirs["connections"], 0, "another tenant's counts are not visible: {theirs}");
    let bad = app.admin(Method::GET, "/v1/health/summary?top=0").send().await.unwrap();
    assert_problem(bad, 400, "invalid_query_parameter").await;
    let unknown = app.admin(Method::GET, "/v1/health/summary?tenant=x").send().await.unwrap();
    assert_eq!(unknown.status(), 400, "unknown parameters are refused");
}

/// The list filters of the helpdesk dashboard must not scan the fleet. With 20 000 connections
/// (statistics analysed) each filter's plan starts from an index.
#[tokio::test]
async fn connection_filters_use_indexes() {
    let app = TestApp::spawn().await;
    let bank = app.sandbox_institution("healthy").await;
    sqlx::query(
        "insert into connection (id, tenant_id, institution_id, display_name, state, error_code, last_success_at,
                                 credentials_sealed, credentials_key_id)
         select gen_random_uuid(), gen_random_uuid(), $1, 'Bulk ' || n,
                case n % 50 when 0 then 'bank_issue' when 1 then 'needs_user_action' else 'healthy' end,
                case n % 50 when 0 then 102 when 1 then 103 end,
                now() - case when n % 100 = 7 then interval '10 days' else make_interval(hours => n % 24) end,
                '\\x00', 'k'
         from generate_series(1, 20000) n",
    )
    .bind(bank)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("analyze connection").execute(&app.pool).await.unwrap();
    for (filter, index) in [
        ("state = 'bank_issue'".to_owned(), "connection_state_idx"),
        ("error_code = 103".to_owned(), "connection_error_idx"),
        (
            "not stale and state <> 'disconnected' and swept_success_at < now() - interval '7 days'".to_owned(),
            "connection_stale_candidates_idx",
        ),
        ("tenant_id = '5b0c2a8e-1f1e-4a4e-9d3c-2f8e9b7a6c5d'".to_owned(), "connection_tenant_idx"),
        (
            format!("institution_id = '{bank}' order by created_at, id limit 50"),
            "connection_institution_listing_idx|connection_listing_idx",
        ),
        ("state = 'needs_user_action' order by created_at, id limit 50".to_owned(), "connection_state_idx"),
    ] {
        let plan: Vec<String> = sqlx::query_scalar(&format!("explain select id from connection where {filter}"))
            .fetch_all(&app.pool)
            .await
            .unwrap();
        let plan = plan.join("\n");
        assert!(index.split('|').any(|index| plan.contains(index)), "{filter} should use {index}:\n{plan}");
        assert!(!plan.contains("Seq Scan"), "{filter} scans the table:\n{plan}");
    }
    let summary = summary(&app, &app.admin_key, "").await;
    assert_eq!(summary["connections"], 20000);
    let codes: Vec<(i64, i64)> = summary["by_error_code"]
        .as_array()
        .unwrap()
        .iter()
        .map(|count| (count["code"].as_i64().unwrap(), count["connections"].as_i64().unwrap()))
        .collect();
    assert_eq!(codes, [(102, 400), (103, 400)], "{summary}");
    assert_eq!(summary["by_error_code"][0]["title"], json!("Bank not responding"), "{summary}");
}

/// A client that hangs up drops the summary's handler wherever it waits, the begin of its
/// snapshot included. Such drops used to pool a connection still inside a transaction: the next
/// borrower's statements ran in it, and the next summary's `SET TRANSACTION` after them answered
/// 500. Two pooled connections here, one of them the catalogue's listener, so every request meets
/// whatever the dropped one left behind.
#[tokio::test]
async fn summaries_dropped_mid_flight_leave_no_connection_inside_a_transaction() {
    let app = TestApp::spawn().await;
    let replica = app.replica_on(feedwatch::database::pool(&app.database_url, 2).unwrap()).await;
    let get = |path: &str| app.client.get(format!("http://{}{path}", replica.addr)).bearer_auth(&app.admin_key).send();
    assert_eq!(get("/v1/health/summary").await.unwrap().status(), 200);
    let request = format!(
        "GET /v1/health/summary HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\n\r\n",
        replica.addr, app.admin_key
    );
    for hang_up_after in 0..240 {
        let mut client = tokio::net::TcpStream::connect(replica.addr).await.unwrap();
        client.write_all(request.as_bytes()).await.unwrap();
        // Each turn lets the server go one await further before the client hangs up.
        for _ in 0..hang_up_after % 24 {
            tokio::task::yield_now().await;
        }
        drop(client);
        // A plain read first: on a connection left inside a transaction it would run there.
        let listed = get("/v1/connections?limit=1").await.unwrap();
        assert_eq!(listed.status(), 200, "after hanging up at turn {hang_up_after}");
        let summary = get("/v1/health/summary").await.unwrap();
        assert_eq!(
            summary.status(),
            200,
            "after hanging up at turn {hang_up_after}: {}",
            summary.text().await.unwrap()
        );
    }
}
