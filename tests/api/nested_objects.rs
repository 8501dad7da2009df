//! Objects only where the document says object: every JSON request body is probed with an array
//! in place of each object it documents, at every depth, and with an object in place of each
//! array; each answers 422 naming the field. serde would otherwise read a sequence as a struct's
//! fields in order.

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::support::{TestApp, assert_problem};

const REFUSAL: &str = "invalid type: sequence, expected a JSON object";

/// `schema` with its `$ref` followed and a nullable `oneOf [null, X]` read as `X`.
fn resolve<'a>(document: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return resolve(document, &document["components"]["schemas"][name]);
    }
    let alternatives = ["oneOf", "anyOf", "allOf"].iter().find_map(|key| schema[*key].as_array());
    match alternatives {
        Some(items) => {
            items.iter().filter(|item| item["type"] != "null").flat_map(|item| resolve(document, item)).collect()
        }
        None => vec![schema],
    }
}

/// A place in a body, as the JSON path serde names it, the body that puts the wrong kind of value
/// there, and the message that must refuse it.
type Place = (String, Value, &'static str);

/// Every place under `schema` documented as an object (a schema with properties), with an empty
/// array put there, and every place documented as an array, with an empty object put there.
fn wrong_kinds(document: &Value, schema: &Value, depth: usize, out: &mut Vec<Place>) {
    for resolved in resolve(document, schema) {
        let Some(properties) = resolved["properties"].as_object() else { continue };
        for (name, property) in properties {
            for inner in resolve(document, property) {
                if inner["properties"].is_object() {
                    out.push((name.clone(), json!({ name: [] }), REFUSAL));
                    if depth < 3 {
                        let mut nested = Vec::new();
                        wrong_kinds(document, inner, depth + 1, &mut nested);
                        out.extend(
                            nested.into_iter().map(|(path, body, message)| {
                                (format!("{name}.{path}"), json!({ name: body }), message)
                            }),
                        );
                    }
                }
                let Some(items) = inner.get("items") else { continue };
                out.push((name.clone(), json!({ name: {} }), "invalid type: map, expected a sequence"));
                if resolve(document, items).iter().any(|item| item["properties"].is_object()) {
                    out.push((format!("{name}[0]"), json!({ name: [[]] }), REFUSAL));
                }
            }
        }
    }
}

/// Path parameters any well-formed value of which reaches the body's parsing.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{code}" => "102".to_owned(),
            segment if segment.starts_with('{') => uuid::Uuid::new_v4().to_string(),
            segment => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_json_body_refuses_an_array_for_an_object_and_an_object_for_an_array() {
    let app = TestApp::spawn().await;
    let document = serde_json::to_value(feedwatch::http::openapi()).unwrap();
    let mut probed = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            if schema.is_null() {
                continue;
            }
            let mut places = Vec::new();
            wrong_kinds(&document, schema, 0, &mut places);
            for (field, body, message) in places {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let response = app
                    .admin(method.clone(), &concrete(path))
                    .header("if-match", "\"v1\"")
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let what = format!("{method} {path} with {body}");
                assert_eq!(response.status(), 422, "{what}");
                let problem = assert_problem(response, 422, "validation_failed").await;
                let errors = problem["errors"].as_array().unwrap();
                assert!(
                    errors.iter().any(|error| error["field"] == field.as_str() && error["message"] == message),
                    "{what}: {problem}"
                );
                probed.push(format!("{method} {path} {field} {body}"));
            }
        }
    }
    eprintln!("probed {} places:\n{}", probed.len(), probed.join("\n"));
    // The bodies with nested objects today (institutions' ofx, connections' credentials, a
    // catalogue entry's sources): a probe that found none of them would prove nothing.
    for expected in [
        r#"POST /v1/institutions ofx {"ofx":[]}"#,
        r#"POST /v1/connections credentials {"credentials":[]}"#,
        r#"PATCH /v1/connections/{id} credentials {"credentials":[]}"#,
        r#"PUT /v1/errors/{code} sources[0] {"sources":[[]]}"#,
    ] {
        assert!(probed.iter().any(|place| place == expected), "{expected} was not probed");
    }
}

#[tokio::test]
async fn a_positional_array_that_serde_would_read_as_the_object_is_refused_and_creates_nothing() {
    let app = TestApp::spawn().await;
    // Exactly OfxInput's fields in order: read as the object unless objects are required.
    let institution = json!({
        "slug": "positional-bank", "name": "Positional Bank", "provider": "ofx",
        "ofx": ["https://ofx.example/ofx", "ORG", "1", null, null, 102]
    });
    let response = app.admin(Method::POST, "/v1/institutions").json(&institution).send().await.unwrap();
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!((&problem["errors"][0]["field"], &problem["errors"][0]["message"]), (&json!("ofx"), &json!(REFUSAL)));
    let listed: Value =
        app.admin(Method::GET, "/v1/institutions?q=positional").send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["items"], json!([]), "nothing was created: {listed}");

    let tenant = app.key("tenant", Some(uuid::Uuid::new_v4())).await;
    let bank = app.sandbox_institution("healthy").await;
    let connection =
        json!({ "institution_id": bank, "display_name": "Positional", "credentials": ["user_good", "pass_good"] });
    let response = app.anonymous(Method::POST, "/v1/connections").bearer_auth(&tenant).json(&connection).send().await;
    let problem = assert_problem(response.unwrap(), 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "credentials", "{problem}");

    // The statement options part of a multipart import: `columns` given positionally.
    let created = app.connection(&tenant, bank, "Imports", "pass_good").await;
    let id = created["id"].as_str().unwrap();
    let boundary = "feedwatch-test-boundary";
    let csv = "Date,Text,Amount\n2024-01-02,Kiosk,-1.50\n";
    let options = Map::from_iter([("columns".to_owned(), json!([1, 2, 3, null, null, null, null]))]);
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"e.csv\"\r\n\r\n{csv}\r\n\
         --{boundary}--\r\n",
        Value::Object(options)
    );
    let response = app
        .anonymous(Method::POST, &format!("/v1/connections/{id}/imports"))
        .bearer_auth(&tenant)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let problem = assert_problem(response, 422, "validation_failed").await;
    assert_eq!(problem["errors"][0]["field"], "options", "{problem}");
    assert!(problem["errors"][0]["message"].as_str().unwrap().contains(REFUSAL), "{problem}");
}
