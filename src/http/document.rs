//! What the OpenAPI document says about operations that the path attributes cannot: links from
//! the operations that create a resource (or list one) to the operations that take its id, so
//! clients and stateful fuzzers (schemathesis) can follow them, and request examples drawn from
//! shipped data.

use serde_json::{Value, json};
use utoipa::openapi::extensions::Extensions;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::Operation;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::{OpenApi, Ref, RefOr};

use crate::catalog::{Catalog, Code};
use crate::institution::ProviderKind;

/// One link: after `from` answers `status`, `to` can be called with these parameters
/// (runtime expressions, `path.`/`header.` qualified where a name is ambiguous).
struct Link {
    from: &'static str,
    status: &'static str,
    to: &'static str,
    parameters: &'static [(&'static str, &'static str)],
    /// A request body for `to`, with runtime expressions as values where it needs ids.
    body: Option<fn() -> Value>,
}

const ID: &[(&str, &str)] = &[("id", "$response.body#/id")];
const ID_AND_ETAG: &[(&str, &str)] = &[("path.id", "$response.body#/id"), ("header.if-match", "$response.header.etag")];
const CODE: &[(&str, &str)] = &[("code", "$response.body#/code")];
const SAME_ID: &[(&str, &str)] = &[("id", "$request.path.id")];

impl Link {
    const fn new(
        from: &'static str,
        status: &'static str,
        to: &'static str,
        parameters: &'static [(&'static str, &'static str)],
    ) -> Self {
        Self { from, status, to, parameters, body: None }
    }

    /// A link whose target takes a body built from the response instead of path parameters.
    const fn with_body(from: &'static str, status: &'static str, to: &'static str, body: fn() -> Value) -> Self {
        Self { from, status, to, parameters: &[], body: Some(body) }
    }
}

const LINKS: &[Link] = &[
    Link::new("create_api_key", "201", "get_api_key", ID),
    Link::new("create_api_key", "201", "revoke_api_key", ID),
    Link::new("create_connection", "201", "get_connection", ID),
    Link::new("create_connection", "201", "update_connection", ID_AND_ETAG),
    Link::new("create_connection", "201", "delete_connection", ID_AND_ETAG),
    Link::new("create_connection", "201", "list_accounts", ID),
    Link::new("create_connection", "201", "list_connection_events", ID),
    Link::new("create_connection", "201", "trigger_refresh", ID),
    Link::new("create_connection", "201", "list_connection_refreshes", ID),
    Link::new("create_connection", "201", "sync_transactions", ID),
    Link::new("create_connection", "201", "diagnose_connection", ID),
    Link::new(
        "list_accounts",
        "200",
        "update_account",
        &[("id", "$request.path.id"), ("account_id", "$response.body#/0/id")],
    ),
    Link::new("list_accounts", "200", "list_account_transactions", &[("id", "$response.body#/0/id")]),
    Link::new("trigger_refresh", "202", "get_refresh", &[("id", "$response.body#/refresh_id")]),
    Link::new("trigger_refresh", "202", "list_connection_refreshes", SAME_ID),
    Link::new("create_institution", "201", "get_institution", ID),
    Link::with_body("create_institution", "201", "create_connection", connection_body),
    Link::with_body("create_institution", "201", "declare_incident", incident_body),
    Link::new("create_institution", "201", "replace_institution", ID),
    Link::new("declare_incident", "201", "get_incident", ID),
    Link::new("declare_incident", "201", "update_incident", ID),
    Link::new("create_webhook", "201", "get_webhook", ID),
    Link::new("create_webhook", "201", "update_webhook", ID),
    Link::new("create_webhook", "201", "delete_webhook", ID),
    Link::new("create_webhook", "201", "rotate_webhook_secret", ID),
    Link::new("create_webhook", "201", "list_webhook_deliveries", ID),
    Link::new("lookup_error", "200", "list_error_revisions", CODE),
    Link::new("lookup_error", "200", "edit_error", CODE),
];

/// A connection at a new institution (for an admin key, which must name the tenant).
fn connection_body() -> Value {
    json!({
        "institution_id": "$response.body#/id",
        "tenant_id": "00000000-0000-4000-8000-00000000de70",
        "display_name": "Operating account",
        "credentials": {"user_id": "user_good", "password": "pass_good"}
    })
}

fn incident_body() -> Value {
    json!({"institution_id": "$response.body#/id", "title": "Bank down for scheduled maintenance"})
}

/// Adds every link and the examples no attribute can hold.
pub fn complete(document: &mut OpenApi) {
    for link in LINKS {
        add_link(document, link);
    }
    add_entry_example(document);
    require_a_value(
        document,
        "PatchAccount",
        &[("display_name", "string"), ("hidden", "boolean"), ("bank_account_id", "string")],
    );
    require_url_for_ofx(document);
    retry_delay_with_retryable(document);
}

/// An institution whose provider is `ofx` needs its server's URL (`institution::validate`
/// refuses one without, 422). Stated as what is refused (`not`): generators of typed clients
/// read an `anyOf` beside the properties as a union of partial types, and skip a `not`.
fn require_url_for_ofx(document: &mut OpenApi) {
    let without_url = json!({
        "required": ["provider", "ofx"],
        "properties": {
            "provider": { "const": ProviderKind::Ofx.as_str() },
            "ofx": { "not": { "required": ["url"], "properties": { "url": { "type": "string" } } } }
        }
    });
    add_rule(document, "InstitutionInput", "not", without_url);
}

/// A catalogue entry has a typical retry delay exactly when it is retryable
/// (`catalog::validate_entry` refuses either without the other); a `not` as above.
fn retry_delay_with_retryable(document: &mut OpenApi) {
    let mismatched = json!({ "anyOf": [
        { "properties": { "retryable": { "const": true } }, "not": { "required": ["retry_after"] } },
        { "properties": { "retryable": { "const": false } }, "required": ["retry_after"] }
    ] });
    add_rule(document, "Entry", "not", mismatched);
}

/// An account patch must give at least one field a value (an empty one is refused with 422);
/// the derive cannot say so, and a fuzzer that believes `{}` valid reports the refusal. utoipa's
/// `Object` has no `anyOf`, so it goes in through the flattened extensions.
fn require_a_value(document: &mut OpenApi, schema: &str, fields: &[(&str, &str)]) {
    let choices: Vec<Value> = fields
        .iter()
        .map(|(name, kind)| json!({ "required": [name], "properties": { *name: { "type": kind } } }))
        .collect();
    add_rule(document, schema, "anyOf", Value::Array(choices));
}

/// A rule across fields, as the JSON Schema `keyword` of the object schema `schema`, through the
/// extensions like `require_a_value`'s `anyOf` (one key each: extensions are a hash map, and
/// two would be written in an order that changes from run to run; see `shared_link`).
fn add_rule(document: &mut OpenApi, schema: &str, keyword: &str, rule: Value) {
    let Some(components) = document.components.as_mut() else { return };
    let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
        panic!("{schema} is not an object schema")
    };
    let extensions = object.extensions.get_or_insert_with(Default::default);
    assert!(!extensions.contains_key(keyword), "{schema} has a rule in `{keyword}` already");
    extensions.insert(keyword.to_owned(), rule);
}

fn add_link(document: &mut OpenApi, link: &Link) {
    // A link naming an operation the document lacks would be silently useless: fail the
    // document test (and the start) instead.
    assert!(operation(document, link.to).is_some(), "link target {} is not an operation", link.to);
    let entry = match link.body {
        Some(body) => RefOr::Ref(Ref::new(shared_link(document, link, body()))),
        None => {
            let builder = link
                .parameters
                .iter()
                .fold(LinkBuilder::new(), |builder, (name, value)| builder.parameter(*name, *value));
            // utoipa 5.5 serialises `Link::operation_id` as `operation_id`, which no reader
            // knows; the specification's `operationId` goes in through the extensions.
            let operation_id = Extensions::from_iter([("operationId", link.to)]);
            RefOr::T(builder.extensions(Some(operation_id)).build())
        }
    };
    let Some(from) = operation(document, link.from) else { panic!("link source {} is not an operation", link.from) };
    let Some(RefOr::T(response)) = from.responses.responses.get_mut(link.status) else {
        panic!("{} has no {} response to link from", link.from, link.status)
    };
    response.links.insert(link.to.to_owned(), entry);
}

/// A link with a request body, written whole under `components.links`; returns its reference.
/// Inline it would need two extension keys (`operationId`, `requestBody`), and extensions are a
/// hash map: their order would change from run to run, and the committed document with it.
fn shared_link(document: &mut OpenApi, link: &Link, body: Value) -> String {
    let name = format!("{}_{}", link.from, link.to);
    let parameters: serde_json::Map<String, Value> =
        link.parameters.iter().map(|(name, value)| ((*name).to_owned(), Value::from(*value))).collect();
    let mut value = json!({ "operationId": link.to, "requestBody": body });
    if !parameters.is_empty() {
        value["parameters"] = Value::Object(parameters);
    }
    let components = document.components.get_or_insert_with(Default::default);
    let extensions = components.extensions.get_or_insert_with(Default::default);
    let links = extensions.entry("links".to_owned()).or_insert_with(|| json!({}));
    links[name.as_str()] = value;
    format!("#/components/links/{name}")
}

fn operation<'a>(document: &'a mut OpenApi, id: &str) -> Option<&'a mut Operation> {
    document.paths.paths.values_mut().find_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch]
            .into_iter()
            .flatten()
            .find(|operation| operation.operation_id.as_deref() == Some(id))
    })
}

/// An admin edit's body is a whole entry: the shipped entry for 102 is the truest example.
fn add_entry_example(document: &mut OpenApi) {
    // The shipped files are compiled in and checked by their own tests; were they unreadable
    // the service would not start, so the example is simply left out here.
    let Some(example) = Catalog::shipped()
        .ok()
        .and_then(|catalog| catalog.entries.get(&Code::new(102)).map(serde_json::to_value))
        .and_then(Result::ok)
    else {
        return;
    };
    let Some(body) = operation(document, "edit_error").and_then(|edit| edit.request_body.as_mut()) else { return };
    for content in body.content.values_mut() {
        content.example = Some(Value::clone(&example));
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;

    /// Generators name functions and types after operation ids: a repeated one breaks them
    /// (openapi-typescript's `operations` interface), and a link to it would be ambiguous.
    #[test]
    fn every_operation_has_its_own_id_and_every_link_names_one() {
        let document = serde_json::to_value(crate::http::openapi()).unwrap_or_default();
        let operations: Vec<&Value> = document["paths"]
            .as_object()
            .into_iter()
            .flat_map(|paths| paths.values())
            .flat_map(|item| item.as_object().into_iter().flat_map(|item| item.values()))
            .collect();
        let ids: Vec<&str> = operations.iter().filter_map(|operation| operation["operationId"].as_str()).collect();
        assert_eq!(ids.len(), operations.len(), "every operation has an id");
        assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len(), "{ids:?}");
        let links: Vec<&Value> = operations
            .iter()
            .filter_map(|operation| operation["responses"].as_object())
            .flat_map(|responses| responses.values())
            .filter_map(|response| response["links"].as_object())
            .flat_map(|links| links.values())
            .collect();
        assert!(links.len() >= 20, "{}", links.len());
        for link in links {
            let shared = link["$ref"].as_str().and_then(|at| at.strip_prefix("#/components/links/"));
            let link = shared.map_or(link, |name| &document["components"]["links"][name]);
            let target = link["operationId"].as_str().unwrap_or_default();
            assert!(ids.contains(&target), "{link}");
        }
    }
    /// The document's `not` on `Entry` is the rule `catalog::validate_entry` applies: a
    /// typical retry delay exactly when the entry is retryable.
    #[test]
    fn an_entry_has_a_retry_delay_exactly_when_retryable_in_the_document_too() {
        let document = serde_json::to_value(crate::http::openapi()).unwrap_or_default();
        let refused = &document["components"]["schemas"]["Entry"]["not"]["anyOf"];
        assert_eq!(refused[0]["properties"]["retryable"]["const"], true, "{refused}");
        assert_eq!(refused[0]["not"]["required"][0], "retry_after", "{refused}");
        assert_eq!(refused[1]["properties"]["retryable"]["const"], false, "{refused}");
        assert_eq!(refused[1]["required"][0], "retry_after", "{refused}");

        let catalog = crate::catalog::Catalog::shipped().unwrap_or_else(|errors| panic!("{errors}"));
        let codes: HashSet<_> = catalog.entries.keys().copied().collect();
        let mut entry = catalog.entries.values().next().cloned().unwrap_or_else(|| panic!("no entries"));
        for (retryable, retry_after, valid) in
            [(true, Some("4h"), true), (true, None, false), (false, Some("4h"), false), (false, None, true)]
        {
            entry.retryable = retryable;
            entry.retry_after = retry_after.map(str::to_owned);
            let problems = crate::catalog::validate_entry(&entry, &codes);
            let about_retries = problems.iter().any(|(field, _)| field.ends_with("retry_after"));
            assert_eq!(!about_retries, valid, "{retryable} {retry_after:?}: {problems:?}");
        }
    }
}
