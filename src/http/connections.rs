//! `/v1/connections`: a tenant's bank connections and their timeline. What the resource takes is
//! in `requests`, what it answers in `views`; accounts are their own resource (`http::accounts`).
//!
//! Tenancy: a tenant key sees only its tenant, and another tenant's connection answers 404 (not
//! 403), so ids cannot be probed. Helpdesk reads every tenant; admin does everything.

pub mod requests;
pub mod views;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use super::AppState;
use super::auth::{Allowed, Caller, Writers};
use super::extract::{Json, JsonBytes, Path, Query, parse_json};
use super::idempotent::{self, IdempotentPost, Outcome};
use super::pagination::{Page, PageParams};
use super::precondition::{self, Counter, etag, if_match, required_if_match};
use super::problem::{self, ApiError, FieldError, Problem};
use crate::auth::{Principal, Role};
use crate::catalog::Code;
use crate::connection::store::{self as connection_store, Changes, NewConnection};
use crate::connection::{self, ChangedBy, Connection, Credentials, ListFilter, lifecycle};
use crate::duration::parse_duration;
use crate::idempotency::StoredResponse;
use crate::institution;
use crate::refresh::{self, Trigger};
use requests::{ConnectionFilters, CreateConnection, PatchConnection};
use views::{ConnectionView, view};

const DEFAULT_REFRESH_EVERY: i32 = 86_400;

/// The connection if the caller may see it; otherwise 404, whether or not it exists.
pub(super) async fn visible(state: &AppState, caller: &Principal, id: Uuid) -> Result<Connection, ApiError> {
    connection_store::get(&state.reads, id)
        .await?
        .filter(|connection| caller.can_see_tenant(connection.tenant_id))
        .ok_or_else(|| ApiError::not_found("No connection has that id."))
}

pub(super) fn writer(caller: &Caller) -> Result<&Principal, ApiError> {
    caller.require(&[Role::Admin, Role::Tenant])
}

pub(super) fn actor(principal: &Principal) -> ChangedBy {
    ChangedBy { key_id: Some(principal.key_id), role: principal.role.as_str() }
}

/// How often a connection may be refreshed automatically: 1h to 7d.
const REFRESH_EVERY_SECONDS: std::ops::RangeInclusive<i32> = 3600..=604_800;

/// The durations of `REFRESH_EVERY_SECONDS` in the document's units (whole minutes, hours or
/// days, no leading zero), which the request schemas state as their literal `pattern`; a test
/// keeps the two equal and the pattern exact against `refresh_seconds`.
#[cfg(test)]
const REFRESH_EVERY_PATTERN: &str =
    "^(([6-9][0-9]|[1-9][0-9]{2,3}|100[0-7][0-9]|10080)m|([1-9]|[1-9][0-9]|1[0-5][0-9]|16[0-8])h|[1-7]d)$";

fn refresh_seconds(text: &str) -> Result<i32, FieldError> {
    let invalid = || FieldError::new("refresh_every", "must be a duration from 1h to 7d, e.g. 24h");
    let duration = parse_duration(text).map_err(|_| invalid())?;
    let seconds = i32::try_from(duration.as_secs()).map_err(|_| invalid())?;
    if REFRESH_EVERY_SECONDS.contains(&seconds) { Ok(seconds) } else { Err(invalid()) }
}

fn credential_errors(credentials: &Credentials) -> Vec<FieldError> {
    connection::validate_credentials(credentials)
        .into_iter()
        .map(|(field, message)| FieldError::new(field, message))
        .collect()
}

/// Connect a bank: store the connection with its credentials sealed. With an `Idempotency-Key`,
/// a repeated request gets the first response.
#[utoipa::path(post, operation_id = "create_connection", path = "/v1/connections", tag = "connections", security(("api_key" = [])),
    params(("idempotency-key" = Option<String>, Header, nullable = false, description = "Makes a retried create safe: same key and body → same response", pattern = "^[!-~]{1,200}$")),
    request_body(content = CreateConnection, example = json!({
        "tenant_id": "00000000-0000-4000-8000-00000000de70", "institution_id": "4f1c2a9e-7b3d-4e5f-9a1b-2c3d4e5f6a7b", "display_name": "Operating account",
        "credentials": {"user_id": "user_good", "password": "pass_good"}, "refresh_every": "24h"
    })),
    responses(
        (status = 201, description = "Created", body = ConnectionView, headers(
            ("location" = String, description = "The connection's URL"),
            ("etag" = String, description = "The connection's version"))),
        (status = 422, description = "Invalid fields, unknown institution, or an idempotency key reused with another body", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Allowed(principal, _): Allowed<Writers>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    let input: CreateConnection = parse_json(&body)?;
    let post = IdempotentPost::read(&headers, &principal, "/v1/connections", &body)?;
    let tenant_id = owning_tenant(&principal, input.tenant_id)?;
    let credentials = Credentials::from(input.credentials);
    let mut errors = credential_errors(&credentials);
    if !connection::valid_name(&input.display_name) {
        errors.push(FieldError::new("display_name", "must be 1 to 200 characters"));
    }
    let refresh_every = match input.refresh_every.as_deref().map(refresh_seconds).transpose() {
        Ok(seconds) => seconds.unwrap_or(DEFAULT_REFRESH_EVERY),
        Err(error) => {
            errors.push(error);
            DEFAULT_REFRESH_EVERY
        }
    };
    let institution = institution::store::get(&state.reads, input.institution_id).await?.filter(|i| i.active);
    if institution.is_none() {
        errors.push(FieldError::new("institution_id", "no active institution has this id"));
    }
    problem::reject_invalid(errors)?;

    let outcome = post
        .run(&state.pool, async |tx| {
            let id = Uuid::new_v4();
            let (sealed, key_id) = state.sealer.seal(id, &credentials).map_err(|error| ApiError::internal(&error))?;
            let new = NewConnection {
                id,
                tenant_id,
                institution_id: input.institution_id,
                display_name: input.display_name.trim(),
                refresh_every_seconds: refresh_every,
                credentials_sealed: &sealed,
                credentials_key_id: &key_id,
            };
            let detail = serde_json::json!({ "display_name": new.display_name, "institution_id": new.institution_id });
            lifecycle::created(&mut *tx, &new, &detail, actor(&principal)).await?;
            // The first refresh commits with the connection: there is never one without the other.
            refresh::enqueue(&mut *tx, id, Trigger::Created).await?;
            let created = connection_store::get(&mut *tx, id)
                .await?
                .ok_or_else(|| ApiError::internal(&"created connection vanished"))?;
            let mut body = view(created, &state.catalog.current());
            body.accounts = Some(Vec::new());
            let bytes = serde_json::to_vec(&body).map_err(|error| ApiError::internal(&error))?;
            let location = format!("/v1/connections/{id}");
            let first = StoredResponse { status: StatusCode::CREATED.as_u16(), body: bytes, location: Some(location) };
            Ok(((id, body.version), first))
        })
        .await?;
    match outcome {
        Outcome::Done((id, version), first) => {
            tracing::info!(connection_id = %id, tenant_id = %tenant_id, "connection created");
            let mut response = idempotent::respond(first);
            response.headers_mut().insert(header::ETAG, etag(Counter::Version, version));
            Ok(response)
        }
        Outcome::Replay(first) => Ok(idempotent::replay(first)),
    }
}

fn owning_tenant(principal: &Principal, requested: Option<Uuid>) -> Result<Uuid, ApiError> {
    match (principal.tenant_id, requested) {
        (Some(own), None) => Ok(own),
        (Some(own), Some(requested)) if requested == own => Ok(own),
        (Some(_), Some(_)) => Err(ApiError::validation(vec![FieldError::new(
            "tenant_id",
            "a tenant key creates connections for its own tenant only",
        )])),
        (None, Some(requested)) => Ok(requested),
        (None, None) => Err(ApiError::validation(vec![FieldError::new("tenant_id", "required with an admin key")])),
    }
}

/// List connections, oldest first, with filters.
#[utoipa::path(get, operation_id = "list_connections", path = "/v1/connections", tag = "connections", security(("api_key" = [])),
    params(PageParams, ConnectionFilters),
    responses((status = 200, description = "One page of connections", body = Page<ConnectionView>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
    Query(filters): Query<ConnectionFilters>,
) -> Result<axum::Json<Page<ConnectionView>>, ApiError> {
    let page = page.validate()?;
    let filter = list_filter(&caller.0, filters)?;
    let rows = connection_store::list(&state.reads, &filter, page.after, page.fetch_limit()).await?;
    let catalog = state.catalog.current();
    Ok(axum::Json(Page::from_rows(rows, &page, |row| (row.created_at, row.id), |row| view(row, &catalog))))
}

pub(in crate::http) fn list_filter(caller: &Principal, filters: ConnectionFilters) -> Result<ListFilter, ApiError> {
    let mut errors = Vec::new();
    let stale_before = match filters.stale_for.as_deref().map(parse_duration).transpose() {
        Ok(Some(duration)) if duration.as_secs() <= 10_000 * 86_400 => {
            chrono::TimeDelta::from_std(duration).ok().map(|delta| Utc::now() - delta)
        }
        Ok(None) => None,
        _ => {
            errors.push(FieldError::new("stale_for", "must be a duration such as 48h or 7d, at most 9999d"));
            None
        }
    };
    if filters.q.as_ref().is_some_and(|q| q.chars().count() > 200) {
        errors.push(FieldError::new("q", "at most 200 characters"));
    }
    let error_code = match filters.error_code.filter(|code| (1..=99_999).contains(code)) {
        Some(code) => Some(Code::new(code)),
        None if filters.error_code.is_none() => None,
        _ => {
            errors.push(FieldError::new("error_code", "not a catalogue code"));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::bad_request("invalid_query_parameter", "Some filters are not valid.").with_errors(errors));
    }
    Ok(ListFilter {
        tenant_id: caller.scope_tenant(filters.tenant_id),
        state: filters.state,
        institution_id: filters.institution_id,
        error_code,
        stale_before,
        q: filters.q.filter(|q| !q.trim().is_empty()),
    })
}

/// One connection with its health and accounts.
#[utoipa::path(get, operation_id = "get_connection", path = "/v1/connections/{id}", tag = "connections", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, description = "The connection", body = ConnectionView, headers(("etag" = String, description = "Its version, for If-Match"))),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(State(state): State<AppState>, caller: Caller, Path(id): Path<Uuid>) -> Result<Response, ApiError> {
    let detailed = visible_detail(&state, &caller.0, id).await?;
    Ok(([(header::ETAG, etag(Counter::Version, detailed.version))], axum::Json(detailed)).into_response())
}

/// The connection's own page (row, accounts, shared account names: one read), if the caller may
/// see it; otherwise 404, whether or not it exists. The API and the console read here.
pub(in crate::http) async fn visible_detail(
    state: &AppState,
    caller: &Principal,
    id: Uuid,
) -> Result<ConnectionView, ApiError> {
    let detail = visible_parts(state, caller, id).await?;
    let mut view = view(detail.connection, &state.catalog.current());
    view.duplicate_account_names = Some(detail.duplicate_account_names);
    view.accounts = Some(detail.accounts);
    Ok(view)
}

/// The connection's page as the store reads it (row, accounts, shared account names), if the
/// caller may see it; otherwise 404. The view above and the diagnosis read here.
pub(super) async fn visible_parts(
    state: &AppState,
    caller: &Principal,
    id: Uuid,
) -> Result<connection_store::ConnectionDetail, ApiError> {
    connection_store::detail(&state.reads, id)
        .await?
        .filter(|detail| caller.can_see_tenant(detail.connection.tenant_id))
        .ok_or_else(|| ApiError::not_found("No connection has that id."))
}

fn stale_etag(current: i32) -> ApiError {
    precondition::failed(
        "stale_etag",
        format!("The connection changed since you read it (it is at version {current}); fetch it and try again."),
    )
}

/// Rename, pause or resume, replace credentials, or change the schedule. Needs `If-Match`.
#[utoipa::path(patch, operation_id = "update_connection", path = "/v1/connections/{id}", tag = "connections", security(("api_key" = [])),
    params(
        ("id" = Uuid, Path, description = "Connection id"),
        ("if-match" = String, Header, description = "The ETag from your last read", pattern = "^(\\*|\"v[0-9]{1,9}\")$", example = "\"v1\""),
    ),
    request_body(content = PatchConnection, example = json!({"paused": true})),
    responses(
        (status = 200, description = "Updated", body = ConnectionView, headers(("etag" = String, description = "The new version"))),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The connection is disconnected", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The connection changed since the ETag was read", body = Problem, content_type = "application/problem+json"),
        (status = 428, description = "If-Match is missing", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    State(state): State<AppState>,
    Allowed(principal, _): Allowed<Writers>,
    Path(id): Path<Uuid>,
    headers: HeaderMap,
    Json(input): Json<PatchConnection>,
) -> Result<Response, ApiError> {
    let current = visible(&state, &principal, id).await?;
    let expected = required_if_match(&headers, Counter::Version)?.version_or(current.version);
    if current.state == connection::State::Disconnected {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "connection_disconnected",
            "A disconnected connection cannot be changed; connect the bank again.",
        ));
    }
    let credentials = input.credentials.map(Credentials::from);
    let mut errors = credentials.as_ref().map(credential_errors).unwrap_or_default();
    if input.display_name.as_deref().is_some_and(|name| !connection::valid_name(name)) {
        errors.push(FieldError::new("display_name", "must be 1 to 200 characters"));
    }
    let refresh_every = match input.refresh_every.as_deref().map(refresh_seconds).transpose() {
        Ok(seconds) => seconds,
        Err(error) => {
            errors.push(error);
            None
        }
    };
    if input.display_name.is_none()
        && input.paused.is_none()
        && credentials.is_none()
        && refresh_every.is_none()
        && errors.is_empty()
    {
        errors.push(FieldError::new("body", "name at least one of display_name, paused, credentials, refresh_every"));
    }
    problem::reject_invalid(errors)?;
    let sealed = credentials
        .as_ref()
        .map(|credentials| state.sealer.seal(id, credentials))
        .transpose()
        .map_err(|error| ApiError::internal(&error))?;
    let changes = Changes {
        display_name: input.display_name.as_deref().map(str::trim),
        paused: input.paused,
        refresh_every_seconds: refresh_every,
        credentials: sealed.as_ref().map(|(blob, key_id)| (blob.as_slice(), key_id.as_str())),
    };
    let mut tx = crate::database::begin(&state.pool).await?;
    lifecycle::edited(&mut tx, &current, expected, &changes, actor(&principal), &state.catalog.current())
        .await?
        .ok_or_else(|| stale_etag(current.version))?;
    if changes.credentials.is_some() {
        refresh::enqueue(&mut tx, id, Trigger::Credentials).await?;
    }
    tx.commit().await?;
    let detailed = visible_detail(&state, &principal, id).await?;
    Ok(([(header::ETAG, etag(Counter::Version, detailed.version))], axum::Json(detailed)).into_response())
}

/// Pauses or resumes refreshes, as a PATCH of `paused` alone would: the console's buttons.
pub(in crate::http) async fn set_paused(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    paused: bool,
) -> Result<(), ApiError> {
    let principal = writer(caller)?;
    let current = visible(state, principal, id).await?;
    if current.state == connection::State::Disconnected {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "connection_disconnected",
            "A disconnected connection cannot be changed; connect the bank again.",
        ));
    }
    let changes = Changes { paused: Some(paused), ..Changes::default() };
    let mut tx = crate::database::begin(&state.pool).await?;
    lifecycle::edited(&mut tx, &current, current.version, &changes, actor(principal), &state.catalog.current())
        .await?
        .ok_or_else(|| stale_etag(current.version))?;
    tx.commit().await?;
    Ok(())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeleteParams {
    /// Delete the connection and everything of it, instead of disconnecting (admin).
    pub purge: Option<bool>,
}

/// Disconnect: refreshes stop, data stays. `?purge=true` (admin) deletes it and all its data.
#[utoipa::path(delete, operation_id = "delete_connection", path = "/v1/connections/{id}", tag = "connections", security(("api_key" = [])),
    params(
        ("id" = Uuid, Path, description = "Connection id"),
        DeleteParams,
        ("if-match" = Option<String>, Header, nullable = false, description = "Only if still at this version", pattern = "^(\\*|\"v[0-9]{1,9}\")$"),
    ),
    responses(
        (status = 204, description = "Disconnected (or purged)"),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The connection changed since the ETag was read", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<DeleteParams>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let principal = writer(&caller)?.clone();
    let current = visible(&state, &principal, id).await?;
    let expected = if_match(&headers, Counter::Version)?.map_or(current.version, |m| m.version_or(current.version));
    if params.purge == Some(true) {
        caller.require(&[Role::Admin])?;
        connection::purge(&state.pool, id).await?;
        tracing::info!(connection_id = %id, "connection purged");
        return Ok(StatusCode::NO_CONTENT);
    }
    if current.state == connection::State::Disconnected {
        return Ok(StatusCode::NO_CONTENT);
    }
    let mut tx = crate::database::begin(&state.pool).await?;
    lifecycle::disconnected(&mut tx, &current, expected, actor(&principal))
        .await?
        .ok_or_else(|| stale_etag(current.version))?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A connection's timeline, oldest first.
#[utoipa::path(get, operation_id = "list_connection_events", path = "/v1/connections/{id}/events", tag = "connections", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Connection id"), PageParams),
    responses(
        (status = 200, description = "One page of events", body = Page<connection::Event>),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(page): Query<PageParams>,
) -> Result<axum::Json<Page<connection::Event>>, ApiError> {
    let page = page.validate()?;
    visible(&state, &caller.0, id).await?;
    let rows = connection_store::events(&state.reads, id, page.after, page.fetch_limit()).await?;
    Ok(axum::Json(Page::of(rows, &page, |row| (row.occurred_at, row.id))))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use utoipa::PartialSchema;

    use super::*;

    /// A client that trusts the document offers exactly the durations a create or an edit takes
    /// (the document leaves out leading zeros and the units below a minute, which the API reads).
    #[test]
    fn the_documented_refresh_pattern_is_the_range_refreshes_take() {
        for schema in [CreateConnection::schema(), PatchConnection::schema()] {
            let schema = serde_json::to_value(schema).unwrap();
            let pattern = schema.pointer("/properties/refresh_every/pattern").and_then(serde_json::Value::as_str);
            assert_eq!(pattern, Some(REFRESH_EVERY_PATTERN), "{schema}");
        }
        let pattern = regex::Regex::new(REFRESH_EVERY_PATTERN).unwrap();
        for number in 0..=20_000 {
            for unit in ["m", "h", "d"] {
                let text = format!("{number}{unit}");
                assert_eq!(pattern.is_match(&text), refresh_seconds(&text).is_ok(), "{text}");
            }
        }
    }
}
