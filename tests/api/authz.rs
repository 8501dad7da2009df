//! The authorisation matrix: every operation of the OpenAPI document, called by each kind of
//! caller against resources of tenant A, answers the status `tests/api/authz_matrix.toml` says.
//! An operation the document has and the table does not (or the other way round) fails the test,
//! so a new operation cannot ship without its row.

use std::collections::BTreeMap;

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use feedwatch::auth::throttle::ThrottleSettings;

use crate::support::{Options, TestApp};

/// The callers, in the table's column order.
const CALLERS: [&str; 6] = ["no_key", "revoked", "tenant_a", "tenant_b", "helpdesk", "admin"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Matrix {
    operations: BTreeMap<String, Row>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Row {
    /// One status per caller, in [`CALLERS`] order.
    statuses: [u16; 6],
    /// A valid request body; `$name` strings are replaced by the fixture's values, and
    /// `"example"` stands for the document's own example.
    body: Option<String>,
    /// The operation removes or uses up its resource: each caller gets resources of its own.
    #[serde(default)]
    fresh: bool,
    /// Callers whose answer depends on the request or the resource, not only on the role: beside
    /// their cell's status they may hear 403 (a success cell) or succeed (a 403 cell, on
    /// resources of their own). The contract fuzzer's per-role runs accept both from them.
    #[serde(default)]
    #[allow(dead_code)]
    forbidden_by_request: Vec<String>,
}

/// The keys of every caller, made once.
struct Keys {
    tenant_a: Uuid,
    by_caller: BTreeMap<&'static str, Option<String>>,
}

/// Resources of tenant A (and the global ones the operations name).
struct Fixture {
    values: BTreeMap<&'static str, String>,
}

async fn keys(app: &TestApp) -> Keys {
    let (tenant_a, tenant_b) = (Uuid::new_v4(), Uuid::new_v4());
    let revoked = app.key("admin", None).await;
    let revoked_id = feedwatch::auth::PresentedKey::parse(&revoked).unwrap().id;
    let response = app.admin(Method::DELETE, &format!("/v1/api-keys/{revoked_id}")).send().await.unwrap();
    assert!(response.status().is_success(), "revoking: {}", response.status());
    let by_caller = BTreeMap::from([
        ("no_key", None),
        ("revoked", Some(revoked)),
        ("tenant_a", Some(app.key("tenant", Some(tenant_a)).await)),
        ("tenant_b", Some(app.key("tenant", Some(tenant_b)).await)),
        ("helpdesk", Some(app.key("helpdesk", None).await)),
        ("admin", Some(app.admin_key.clone())),
    ]);
    Keys { tenant_a, by_caller }
}

async fn created(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "fixture step failed: {status} {body}");
    body
}

async fn fixture(app: &TestApp, keys: &Keys) -> Fixture {
    let unique = Uuid::new_v4().simple().to_string();
    let tenant_key = keys.by_caller["tenant_a"].clone().unwrap();
    let healthy = app.sandbox_institution("healthy").await;
    let connection = app.connection(&tenant_key, healthy, "Authz", "pass_good").await;
    let connection_id = connection["id"].as_str().unwrap().to_owned();
    app.refresh_pool().run_until_idle().await;
    let accounts =
        created(app.admin(Method::GET, &format!("/v1/connections/{connection_id}/accounts")).send().await.unwrap())
            .await;
    let account_id = accounts[0]["id"].as_str().expect("the refresh found accounts").to_owned();
    let refreshes =
        created(app.admin(Method::GET, &format!("/v1/connections/{connection_id}/refreshes")).send().await.unwrap())
            .await;
    let refresh_id = refreshes["items"][0]["refresh_id"].as_i64().expect("the refresh is listed").to_string();
    let hook = json!({ "url": "http://127.0.0.1:9/hook", "events": ["incident.opened"] });
    let webhook =
        created(app.client.post(app.url("/v1/webhooks")).bearer_auth(&tenant_key).json(&hook).send().await.unwrap())
            .await;
    let institution = app.institution(&format!("authz-{}", &unique[..12])).await;
    let spare_institution = app.institution(&format!("spare-{}", &unique[..12])).await;
    let incident = json!({ "institution_id": institution, "title": "Authz", "message": "Checking who may do what." });
    let incident = created(app.admin(Method::POST, "/v1/incidents").json(&incident).send().await.unwrap()).await;
    let victim = app.key("tenant", Some(keys.tenant_a)).await;
    let victim_id = feedwatch::auth::PresentedKey::parse(&victim).unwrap().id;
    let values = BTreeMap::from([
        ("tenant_a", keys.tenant_a.to_string()),
        ("connection", connection_id),
        ("account", account_id),
        ("refresh", refresh_id),
        ("webhook", webhook["id"].as_str().unwrap().to_owned()),
        ("institution", institution.to_string()),
        ("sandbox_institution", healthy.to_string()),
        ("spare_institution", spare_institution.to_string()),
        ("incident", incident["id"].as_str().unwrap().to_owned()),
        ("api_key", victim_id.to_string()),
        // The entry the document's edit example is written for.
        ("code", "102".to_owned()),
        ("unique", unique),
        // No import exists in the fixture: a well-formed id that names none, so an allowed
        // caller hears 404 and a caller without the role 403 (the role is checked first).
        ("import", Uuid::new_v4().to_string()),
    ]);
    Fixture { values }
}

impl Fixture {
    /// The path of an operation, its `{id}` chosen by the resource the path is under.
    fn path(&self, template: &str) -> String {
        let id = match template.split('/').nth(2) {
            Some("connections") => "connection",
            Some("accounts") => "account",
            Some("refreshes") => "refresh",
            Some("webhooks") => "webhook",
            Some("institutions") => "institution",
            Some("incidents") => "incident",
            Some("api-keys") => "api_key",
            Some("imports") => "import",
            _ => "unknown",
        };
        template
            .replace("{id}", self.values.get(id).map_or("unknown", String::as_str))
            .replace("{account_id}", &self.values["account"])
            .replace("{code}", &self.values["code"])
            .replace("{duplicate_id}", &self.values["import"])
    }

    fn body(&self, template: &str) -> Value {
        let mut text = template.to_owned();
        for (name, value) in self.values.iter().rev() {
            text = text.replace(&format!("${name}"), value);
        }
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("body {text}: {error}"))
    }
}

struct Operation {
    id: String,
    method: Method,
    path: String,
    example: Value,
}

async fn operations(app: &TestApp) -> Vec<Operation> {
    let document: Value = app.anonymous(Method::GET, "/openapi.json").send().await.unwrap().json().await.unwrap();
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let example = operation["requestBody"]["content"]["application/json"]["example"].clone();
            let id = operation["operationId"].as_str().unwrap().to_owned();
            found.push(Operation { id, method, path: path.clone(), example });
        }
    }
    found
}

async fn call(app: &TestApp, operation: &Operation, row: &Row, fixture: &Fixture, key: Option<&String>) -> u16 {
    let mut request = app.client.request(operation.method.clone(), app.url(&fixture.path(&operation.path)));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    match row.body.as_deref() {
        Some("example") => request = request.json(&operation.example),
        Some(body) => request = request.json(&fixture.body(body)),
        None => {}
    }
    // Conditional writes are asked unconditionally: the matrix is about who, not when.
    request = request.header("if-match", "*");
    request.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn every_operation_answers_each_caller_as_the_matrix_says() {
    // Half the cells fail authentication on purpose; the throttle would answer them all 429.
    let no_throttle = ThrottleSettings { burst: 0, ..ThrottleSettings::default() };
    let app = TestApp::spawn_with(Options { auth_throttle: no_throttle, ..Options::default() }).await;
    let matrix: Matrix = toml::from_str(include_str!("authz_matrix.toml")).expect("authz_matrix.toml parses");
    let operations = operations(&app).await;
    let documented: Vec<&str> = operations.iter().map(|operation| operation.id.as_str()).collect();
    let missing: Vec<&&str> = documented.iter().filter(|id| !matrix.operations.contains_key(**id)).collect();
    assert!(missing.is_empty(), "operations without a row in tests/api/authz_matrix.toml: {missing:?}");
    let stale: Vec<&String> = matrix.operations.keys().filter(|id| !documented.contains(&id.as_str())).collect();
    assert!(stale.is_empty(), "rows for operations the document does not have: {stale:?}");

    let keys = keys(&app).await;
    let shared = fixture(&app, &keys).await;
    let mut wrong = Vec::new();
    let mut seen = BTreeMap::new();
    for operation in &operations {
        let row = &matrix.operations[&operation.id];
        let mut statuses = [0u16; 6];
        for (column, caller) in CALLERS.iter().enumerate() {
            let own = if row.fresh { Some(fixture(&app, &keys).await) } else { None };
            let fixture = own.as_ref().unwrap_or(&shared);
            statuses[column] = call(&app, operation, row, fixture, keys.by_caller[caller].as_ref()).await;
            if statuses[column] != row.statuses[column] {
                wrong.push(format!(
                    "{} as {caller}: {} (the table says {})",
                    operation.id, statuses[column], row.statuses[column]
                ));
            }
        }
        seen.insert(operation.id.clone(), statuses);
    }
    if !wrong.is_empty() {
        let table: Vec<String> = seen.iter().map(|(id, statuses)| format!("{id} = {statuses:?}")).collect();
        panic!("{} cells differ:\n{}\nas answered:\n{}", wrong.len(), wrong.join("\n"), table.join("\n"));
    }
}
