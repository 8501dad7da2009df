//! `/v1/webhooks`: endpoints that receive signed events, and their delivery logs.
//!
//! Tenancy: a tenant key registers and sees only its tenant's endpoints; another tenant's (or a
//! fleet-wide one) answers 404. Helpdesk and admin keys see every endpoint and may register
//! fleet-wide ones (no `tenant_id`). A signing secret is in the response that made it only (the
//! create, its idempotent replays, a rotation), sealed at rest, never listed or logged.
//! What the resource takes is in `requests`, what it answers in `views`.

pub mod requests;
pub mod views;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use chrono::{TimeDelta, Utc};
use secrecy::ExposeSecret;
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::extract::{Json, JsonBytes, Path, Query, parse_json};
use super::idempotent::{self, IdempotentPost, Outcome};
use super::pagination::{Page, PageParams};
use super::problem::{ApiError, FieldError, Problem};
use crate::auth::{Principal, Role};
use crate::idempotency::StoredResponse;
use crate::webhook::address::parse_url;
use crate::webhook::store::{self, EndpointEdit, NewEndpoint};
use crate::webhook::{Endpoint, EventKind, secret};
use requests::{CreateWebhook, PatchWebhook, WebhookFilters};
use views::{CreatedWebhook, DeliveryView, RotatedSecret};

const MAX_DESCRIPTION: usize = 500;
/// How long a rotated-out secret still signs deliveries: a day lets a receiver deploy the new
/// one without a window in which its deliveries fail verification.
const ROTATION_GRACE: TimeDelta = TimeDelta::hours(24);
/// The `disabled_reason` of an endpoint switched off with `enabled: false`.
const DISABLED_BY_API: &str = "disabled through the API";

fn owning_tenant(principal: &Principal, requested: Option<Uuid>) -> Result<Option<Uuid>, FieldError> {
    match (principal.tenant_id, requested) {
        (Some(own), None) => Ok(Some(own)),
        (Some(own), Some(requested)) if requested == own => Ok(Some(own)),
        (Some(_), Some(_)) => {
            Err(FieldError::new("tenant_id", "a tenant key registers webhooks for its own tenant only"))
        }
        (None, requested) => Ok(requested),
    }
}

/// Helpdesk keys read every endpoint and manage the fleet-wide ones (the team's own incident
/// alerts), but change no tenant's: a new or rotated secret would hand them what signs the
/// tenant's deliveries, and a changed URL would send the tenant's events elsewhere.
fn may_change(principal: &Principal, endpoint_tenant: Option<Uuid>) -> Result<(), ApiError> {
    if principal.role == Role::Helpdesk && endpoint_tenant.is_some() {
        return Err(ApiError::forbidden(
            "Helpdesk keys read a tenant's webhooks but do not register, change, rotate or delete them; the tenant or an admin does.",
        ));
    }
    Ok(())
}

// One check per field, shared by create and edit so both refuse the same input in the same words;
// each adds what is wrong to `errors`, so a request hears about every field at once.

fn check_url(url: &str, errors: &mut Vec<FieldError>) -> Option<reqwest::Url> {
    parse_url(url).map_err(|refused| errors.push(FieldError::new("url", refused.0))).ok()
}

fn check_events(events: &[EventKind], errors: &mut Vec<FieldError>) {
    if events.is_empty() {
        errors.push(FieldError::new("events", "name at least one event"));
    }
    if events.len() > EventKind::ALL.len() {
        errors.push(FieldError::new("events", format!("at most {} events", EventKind::ALL.len())));
    }
}

fn check_description(description: &str, errors: &mut Vec<FieldError>) {
    if description.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new("description", format!("at most {MAX_DESCRIPTION} characters")));
    }
    if description.chars().any(char::is_control) {
        errors.push(FieldError::new("description", "must not contain control characters"));
    }
}

/// The host policy, which may resolve the name: run after the field checks, outside any transaction.
async fn admit_host(state: &AppState, url: &reqwest::Url) -> Result<(), ApiError> {
    state.webhook_hosts.check_registration(url).await.map_err(|refused| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "webhook_url_not_allowed", format!("url: {refused}"))
            .with_errors(vec![FieldError::new("url", refused.0)])
    })
}

/// The stored form of a subscription: each name once, in [`EventKind::ALL`] order.
fn event_names(events: &[EventKind]) -> Vec<String> {
    EventKind::ALL.iter().filter(|kind| events.contains(kind)).map(|kind| kind.as_str().to_owned()).collect()
}

/// The URL and owning tenant of a valid create request, or every field that is wrong.
fn validate(input: &CreateWebhook, principal: &Principal) -> Result<(reqwest::Url, Option<Uuid>), ApiError> {
    let mut errors = Vec::new();
    let url = check_url(&input.url, &mut errors);
    check_events(&input.events, &mut errors);
    check_description(&input.description, &mut errors);
    let tenant_id = owning_tenant(principal, input.tenant_id).map_err(|error| errors.push(error)).ok().flatten();
    match url {
        Some(url) if errors.is_empty() => Ok((url, tenant_id)),
        _ => Err(ApiError::validation(errors)),
    }
}

/// Register an endpoint. The response carries its signing secret, once. With an
/// `Idempotency-Key`, a repeated request gets the first response (secret included).
#[utoipa::path(post, operation_id = "create_webhook", path = "/v1/webhooks", tag = "webhooks", security(("api_key" = [])),
    params(("idempotency-key" = Option<String>, Header, nullable = false, description = "Makes a retried create safe: same key and body → same response", pattern = "^[!-~]{1,200}$")),
    request_body(content = CreateWebhook, example = json!({
        "url": "https://books.example/hooks/feedwatch",
        "events": ["connection.state_changed", "connection.repaired", "incident.opened"],
        "description": "books app sync"
    })),
    responses(
        (status = 201, description = "Registered; the secret is shown only in this response", body = CreatedWebhook,
            headers(("location" = String, description = "The endpoint's URL"))),
        (status = 404, description = "A replayed create whose endpoint has been deleted since", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, a host that is not allowed, or an idempotency key reused with another body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let principal = caller.0;
    let input: CreateWebhook = parse_json(&body)?;
    let post = IdempotentPost::read(&headers, &principal, "/v1/webhooks", &body)?;
    let (url, tenant_id) = validate(&input, &principal)?;
    may_change(&principal, tenant_id)?;
    admit_host(&state, &url).await?;

    let outcome = post
        .run(&state.pool, async |tx| {
            let id = Uuid::new_v4();
            let secret = secret::generate();
            let (sealed, key_id) =
                secret::seal(&state.sealer, id, &secret).map_err(|error| ApiError::internal(&error))?;
            let events = event_names(&input.events);
            let new = NewEndpoint {
                id,
                tenant_id,
                url: url.as_str(),
                events: &events,
                description: input.description.trim(),
                secret_sealed: &sealed,
                secret_key_id: &key_id,
            };
            let view = store::insert_endpoint(tx, &new).await?;
            // The recorded first response leaves the secret out: it stays sealed on the endpoint
            // and a replay opens it again, so no plaintext copy sits in the idempotency table.
            let without_secret = serde_json::to_vec(&view).map_err(|error| ApiError::internal(&error))?;
            let location = format!("/v1/webhooks/{id}");
            let recorded =
                StoredResponse { status: StatusCode::CREATED.as_u16(), body: without_secret, location: Some(location) };
            Ok((CreatedWebhook { webhook: view, secret: secret.expose_secret().to_owned() }, recorded))
        })
        .await?;
    match outcome {
        Outcome::Done(created, recorded) => {
            tracing::info!(webhook_id = %created.webhook.id, tenant_id = ?tenant_id, "webhook registered");
            let bytes = serde_json::to_vec(&created).map_err(|error| ApiError::internal(&error))?;
            let mut response = idempotent::json_response(StatusCode::CREATED, bytes, recorded.location.as_deref());
            response.headers_mut().extend([super::hygiene::no_store()]);
            Ok(response)
        }
        Outcome::Replay(first) => replay(&state, first).await,
    }
}

/// The first response again, with the secret opened from the endpoint it created.
async fn replay(state: &AppState, first: StoredResponse) -> Result<Response, ApiError> {
    let view: Endpoint = serde_json::from_slice(&first.body).map_err(|error| ApiError::internal(&error))?;
    let gone = || ApiError::not_found("The webhook this Idempotency-Key created has been deleted since.");
    let (blob, key_id) = store::sealed_secret(&state.reads, view.id).await?.ok_or_else(gone)?;
    let secret = secret::open(&state.sealer, view.id, &key_id, &blob).map_err(|error| ApiError::internal(&error))?;
    let created = CreatedWebhook { webhook: view, secret: secret.expose_secret().to_owned() };
    let body = serde_json::to_vec(&created).map_err(|error| ApiError::internal(&error))?;
    let mut response = idempotent::replay(StoredResponse { body, ..first });
    response.headers_mut().extend([super::hygiene::no_store()]);
    Ok(response)
}

/// List endpoints, oldest first.
#[utoipa::path(get, operation_id = "list_webhooks", path = "/v1/webhooks", tag = "webhooks", security(("api_key" = [])),
    params(PageParams, WebhookFilters),
    responses((status = 200, description = "One page of endpoints", body = Page<Endpoint>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
    Query(filters): Query<WebhookFilters>,
) -> Result<axum::Json<Page<Endpoint>>, ApiError> {
    let page = page.validate()?;
    let tenant_id = caller.0.scope_tenant(filters.tenant_id);
    let rows = store::list_endpoints(&state.reads, tenant_id, page.after, page.fetch_limit()).await?;
    Ok(axum::Json(Page::of(rows, &page, |row| (row.created_at, row.id))))
}

/// Tenant keys see their tenant's endpoints only; helpdesk and admin keys every one.
fn may_see(caller: &Principal, endpoint: &Endpoint) -> bool {
    caller.tenant_id.is_none() || endpoint.tenant_id == caller.tenant_id
}

fn no_such_webhook() -> ApiError {
    ApiError::not_found("No webhook has that id.")
}

/// The endpoint if the caller may see it; otherwise 404, whether or not it exists.
async fn visible(state: &AppState, caller: &Principal, id: Uuid) -> Result<Endpoint, ApiError> {
    store::get_endpoint(&state.reads, id)
        .await?
        .filter(|endpoint| may_see(caller, endpoint))
        .ok_or_else(no_such_webhook)
}

/// One endpoint.
#[utoipa::path(get, operation_id = "get_webhook", path = "/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The endpoint", body = Endpoint),
        (status = 404, description = "No such webhook visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Endpoint>, ApiError> {
    Ok(axum::Json(visible(&state, &caller.0, id).await?))
}

/// Change an endpoint's URL, events or description, or enable or disable it. Fields left out
/// stay as they are; a request that changes nothing answers the endpoint as it is.
#[utoipa::path(patch, operation_id = "update_webhook", path = "/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    request_body(content = PatchWebhook, example = json!({"enabled": true})),
    responses(
        (status = 200, description = "The endpoint as it is now", body = Endpoint),
        (status = 404, description = "No such webhook visible to this key", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields or a host that is not allowed", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Json(input): Json<PatchWebhook>,
) -> Result<axum::Json<Endpoint>, ApiError> {
    let principal = caller.0;
    // Who may change it is settled before what is asked: a helpdesk key hears 403 for a
    // tenant's endpoint whatever body it sent.
    may_change(&principal, visible(&state, &principal, id).await?.tenant_id)?;
    let mut errors = Vec::new();
    let url = input.url.as_deref().and_then(|url| check_url(url, &mut errors));
    if let Some(events) = &input.events {
        check_events(events, &mut errors);
    }
    let description = input.description.as_ref().map(|text| text.as_deref().unwrap_or_default());
    if let Some(description) = description {
        check_description(description, &mut errors);
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    if let Some(url) = &url {
        admit_host(&state, url).await?;
    }

    let mut tx = crate::database::begin(&state.pool).await?;
    let current = store::lock_endpoint(&mut tx, id)
        .await?
        .filter(|endpoint| may_see(&principal, endpoint))
        .ok_or_else(no_such_webhook)?;
    let url = url.map(|url| url.as_str().to_owned()).filter(|url| *url != current.url);
    let events = input.events.as_deref().map(event_names).filter(|events| *events != event_names(&current.events));
    let description = description.map(str::trim).filter(|text| *text != current.description);
    let enabled = input.enabled.filter(|enabled| *enabled != current.enabled);
    if url.is_none() && events.is_none() && description.is_none() && enabled.is_none() {
        return Ok(axum::Json(current));
    }
    let edit = EndpointEdit {
        url: url.as_deref(),
        events: events.as_deref(),
        description,
        enabled: enabled.unwrap_or(current.enabled),
        disabled_reason: match enabled {
            Some(true) => None,
            Some(false) => Some(DISABLED_BY_API),
            None => current.disabled_reason.as_deref(),
        },
    };
    let updated = store::update_endpoint(&mut *tx, id, &edit).await?.ok_or_else(no_such_webhook)?;
    tx.commit().await?;
    tracing::info!(webhook_id = %id, enabled = updated.enabled, "webhook updated");
    Ok(axum::Json(updated))
}

/// Replace the signing secret. The new one is in this response only; the previous one keeps
/// signing deliveries, beside the new, for 24 hours, so receivers can switch without a gap.
/// Rotating again within that time drops the oldest secret at once.
#[utoipa::path(post, operation_id = "rotate_webhook_secret", path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "Rotated; the new secret is shown only in this response", body = RotatedSecret),
        (status = 404, description = "No such webhook visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    let endpoint = visible(&state, &caller.0, id).await?;
    may_change(&caller.0, endpoint.tenant_id)?;
    let secret = secret::generate();
    let (sealed, key_id) = secret::seal(&state.sealer, id, &secret).map_err(|error| ApiError::internal(&error))?;
    let previous_secret_expires_at = Utc::now() + ROTATION_GRACE;
    let endpoint = store::rotate_secret(&state.pool, id, &sealed, &key_id, previous_secret_expires_at)
        .await?
        .ok_or_else(no_such_webhook)?;
    tracing::info!(webhook_id = %id, %previous_secret_expires_at, "webhook signing secret rotated");
    let rotated =
        RotatedSecret { webhook: endpoint, secret: secret.expose_secret().to_owned(), previous_secret_expires_at };
    Ok(([super::hygiene::no_store()], axum::Json(rotated)))
}

/// Delete an endpoint and its delivery log; queued deliveries to it are dropped.
#[utoipa::path(delete, operation_id = "delete_webhook", path = "/v1/webhooks/{id}", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Webhook id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such webhook visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let endpoint = visible(&state, &caller.0, id).await?;
    may_change(&caller.0, endpoint.tenant_id)?;
    if !store::delete_endpoint(&state.pool, id).await? {
        return Err(no_such_webhook());
    }
    tracing::info!(webhook_id = %id, "webhook deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// An endpoint's delivery attempts, newest first.
#[utoipa::path(get, operation_id = "list_webhook_deliveries", path = "/v1/webhooks/{id}/deliveries", tag = "webhooks", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Webhook id"), PageParams),
    responses(
        (status = 200, description = "One page of attempts", body = Page<DeliveryView>),
        (status = 404, description = "No such webhook visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(page): Query<PageParams>,
) -> Result<axum::Json<Page<DeliveryView>>, ApiError> {
    let page = page.validate()?;
    visible(&state, &caller.0, id).await?;
    let rows = store::deliveries(&state.reads, id, page.after, page.fetch_limit()).await?;
    Ok(axum::Json(Page::from_rows(rows, &page, |row| (row.at, row.id), DeliveryView::from)))
}
