//! `/v1/incidents`: banks failing for many connections at once. Everyone reads (a bank's outage
//! is not a tenant's secret); helpdesk and admins declare, edit and resolve.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::{Allowed, Caller, Operators};
use super::extract::{Json, Path, Query};
use super::pagination::{Page, PageParams};
use super::problem::{self, ApiError, FieldError, Problem};
use crate::connection::lifecycle;
use crate::incident::{Incident, IncidentState, NewIncident, Source, store};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentFilter {
    /// Only incidents in this state.
    pub state: Option<IncidentState>,
    /// Only this institution's incidents.
    pub institution_id: Option<Uuid>,
}

/// List incidents, newest first.
#[utoipa::path(get, operation_id = "list_incidents", path = "/v1/incidents", tag = "incidents", security(("api_key" = [])),
    params(PageParams, IncidentFilter),
    responses((status = 200, description = "One page of incidents", body = Page<Incident>)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Query(page): Query<PageParams>,
    Query(filter): Query<IncidentFilter>,
) -> Result<axum::Json<Page<Incident>>, ApiError> {
    let page = page.validate()?;
    let rows = store::list(&state.reads, filter.state, filter.institution_id, page.after, page.fetch_limit()).await?;
    Ok(axum::Json(Page::of(rows, &page, |row| (row.opened_at, row.id))))
}

/// One incident.
#[utoipa::path(get, operation_id = "get_incident", path = "/v1/incidents/{id}", tag = "incidents", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    responses(
        (status = 200, description = "The incident", body = Incident),
        (status = 404, description = "No such incident", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Incident>, ApiError> {
    let incident = store::get(&state.reads, id).await?.ok_or_else(no_such_incident)?;
    Ok(axum::Json(incident))
}

fn no_such_incident() -> ApiError {
    ApiError::not_found("No incident has that id.")
}

/// A bank incident declared by hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeclareIncident {
    pub institution_id: Uuid,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$",
        example = "Bank down for scheduled maintenance"
    )]
    pub title: String,
    /// Shown to business owners whose connections are affected.
    #[serde(default)]
    #[schema(max_length = 2000, example = "The bank expects to be back by 06:00 UTC.")]
    pub message: String,
    /// Affected connections are not retried before this (default: in 30 minutes).
    pub wait_until: Option<DateTime<Utc>>,
}

/// Declare an incident (helpdesk, admin). One institution has at most one open incident: a
/// second declaration answers 409 with the open one's id.
#[utoipa::path(post, operation_id = "declare_incident", path = "/v1/incidents", tag = "incidents", security(("api_key" = [])),
    request_body(content = DeclareIncident, example = json!({
        "institution_id": "4f1c2a9e-7b3d-4e5f-9a1b-2c3d4e5f6a7b", "title": "Bank down for scheduled maintenance",
        "message": "The bank expects to be back by 06:00 UTC.", "wait_until": "2026-12-03T06:00:00Z"
    })),
    responses(
        (status = 201, description = "Declared", body = Incident, headers(("location" = String, description = "Its URL"))),
        (status = 409, description = "The institution already has an open incident", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown institution or invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn declare(
    State(state): State<AppState>,
    operator: Allowed<Operators>,
    Json(input): Json<DeclareIncident>,
) -> Result<(StatusCode, HeaderMap, axum::Json<Incident>), ApiError> {
    let opened = declare_for(&state, &operator, input).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/incidents/{}", opened.id)) {
        headers.insert(header::LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, axum::Json(opened)))
}

/// Declares an incident: the API's POST and the console's form.
pub(in crate::http) async fn declare_for(
    state: &AppState,
    Allowed(principal, _): &Allowed<Operators>,
    input: DeclareIncident,
) -> Result<Incident, ApiError> {
    check_text(Some(&input.title), Some(&input.message))?;
    if crate::institution::store::get(&state.reads, input.institution_id).await?.is_none() {
        return Err(ApiError::validation(vec![FieldError::new("institution_id", "no institution has that id")]));
    }
    let new = NewIncident {
        institution_id: input.institution_id,
        source: Source::Declared,
        title: input.title.trim().to_owned(),
        message: input.message.trim().to_owned(),
        error_code: None,
        failed_connections: 0,
        attempted_connections: 0,
        wait_until: input.wait_until.unwrap_or_else(|| Utc::now() + chrono::TimeDelta::minutes(30)),
        opened_by: Some(principal.key_id),
    };
    let mut tx = crate::database::begin(&state.pool).await?;
    let Some(opened) = store::open(&mut tx, &new).await? else {
        let open = store::open_for(&mut *tx, input.institution_id).await?;
        let detail = match open {
            Some(open) => format!("The institution already has an open incident: {}.", open.id),
            None => "The institution already has an open incident.".to_owned(),
        };
        return Err(ApiError::new(StatusCode::CONFLICT, "incident_already_open", detail));
    };
    lifecycle::incident_opened(&mut tx, &opened).await?;
    tx.commit().await?;
    Ok(opened)
}

/// The one state a PATCH may set: an incident is opened by POST or by detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolveState {
    Resolved,
}

/// Changes to an open incident; `state: resolved` resolves it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchIncident {
    pub state: Option<ResolveState>,
    /// Why it is resolved (with `state: resolved`).
    #[schema(max_length = 2000)]
    pub resolution: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub title: Option<String>,
    #[schema(max_length = 2000)]
    pub message: Option<String>,
    pub wait_until: Option<DateTime<Utc>>,
}

/// Edit or resolve an open incident (helpdesk, admin). A resolved incident is history: 409.
#[utoipa::path(patch, operation_id = "update_incident", path = "/v1/incidents/{id}", tag = "incidents", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Incident id")),
    request_body(content = PatchIncident, example = json!({"state": "resolved", "resolution": "The bank confirmed it is back."})),
    responses(
        (status = 200, description = "Updated or resolved", body = Incident),
        (status = 404, description = "No such incident", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The incident is already resolved", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    State(state): State<AppState>,
    operator: Allowed<Operators>,
    Path(id): Path<Uuid>,
    Json(input): Json<PatchIncident>,
) -> Result<axum::Json<Incident>, ApiError> {
    Ok(axum::Json(update_for(&state, &operator, id, input).await?))
}

/// Edits or resolves an open incident: the API's PATCH and the console's resolve form.
pub(in crate::http) async fn update_for(
    state: &AppState,
    Allowed(principal, _): &Allowed<Operators>,
    id: Uuid,
    input: PatchIncident,
) -> Result<Incident, ApiError> {
    check_text(input.title.as_deref(), input.message.as_deref())?;
    if input.resolution.as_ref().is_some_and(|text| text.chars().count() > 2000) {
        return Err(ApiError::validation(vec![FieldError::new("resolution", "at most 2000 characters")]));
    }
    let mut tx = crate::database::begin(&state.pool).await?;
    let changes = store::Changes {
        title: input.title.as_deref().map(str::trim),
        message: input.message.as_deref().map(str::trim),
        wait_until: input.wait_until,
    };
    let mut updated = store::update_open(&mut tx, id, &changes).await?;
    if updated.is_some() && input.state == Some(ResolveState::Resolved) {
        let resolution = input.resolution.as_deref().map_or("Resolved by hand.", str::trim);
        updated = store::resolve(&mut tx, id, Some(principal.key_id), resolution).await?;
        if let Some(resolved) = &updated {
            crate::refresh::incident_resolved(&mut tx, resolved).await?;
        }
    }
    let Some(updated) = updated else {
        return match store::get(&mut *tx, id).await? {
            Some(_) => {
                Err(ApiError::new(StatusCode::CONFLICT, "incident_resolved", "The incident is already resolved."))
            }
            None => Err(no_such_incident()),
        };
    };
    tx.commit().await?;
    Ok(updated)
}

fn check_text(title: Option<&str>, message: Option<&str>) -> Result<(), ApiError> {
    let mut problems = Vec::new();
    if title.is_some_and(|title| !crate::connection::valid_name(title)) {
        problems.push(FieldError::new("title", "1 to 200 characters, not blank, no control characters"));
    }
    if message.is_some_and(|message| message.chars().count() > 2000) {
        problems.push(FieldError::new("message", "at most 2000 characters"));
    }
    problem::reject_invalid(problems)
}
