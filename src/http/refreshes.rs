//! Refresh triggers and their history: `POST /v1/connections/{id}/refresh`, `/v1/refreshes`,
//! `/v1/queue`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::{Allowed, Caller, Operators};
use super::extract::{Json, Path, Query, parse_json};
use super::idempotent::{self, IdempotentPost, Outcome};
use super::problem::{ApiError, FieldError, Problem};
use crate::auth::{Principal, Role};
use crate::connection::{self, ListFilter};
use crate::idempotency::StoredResponse;
use crate::jobs::{self, JobState};
use crate::refresh::{self, Trigger};

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshAccepted {
    pub refresh_id: i64,
    /// True when the request merged into a refresh that was already pending.
    pub coalesced: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// Refresh even if the connection is paused, waits for the user, or was refreshed moments
    /// ago (helpdesk and admin only).
    #[serde(default)]
    pub force: bool,
}

/// Ask for a refresh now. Merges into a pending one; refused while the connection waits for
/// the user or is paused (409), or right after a success (429 with Retry-After).
#[utoipa::path(post, operation_id = "trigger_refresh", path = "/v1/connections/{id}/refresh", tag = "refreshes", security(("api_key" = [])),
    params(
        ("id" = Uuid, Path, description = "Connection id"),
        ("idempotency-key" = Option<String>, Header, nullable = false, description = "Same key and body → the first response", pattern = "^[!-~]{1,200}$"),
    ),
    // Declared as the object alone and not required: `oneOf [null, object]` is what the
    // generators we check (openapi-python-client) cannot send. An empty body is the plain refresh.
    request_body(content = ref("#/components/schemas/RefreshRequest"), description = "Optional; `{\"force\": true}` for helpdesk",
        example = json!({"force": true})),
    responses(
        (status = 202, description = "Enqueued (or merged into the pending refresh)", body = RefreshAccepted,
            headers(("location" = String, description = "The refresh's URL"))),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Disconnected, paused, or waiting for the user", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Refreshed moments ago; see Retry-After", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn trigger(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let post = IdempotentPost::read(&headers, &caller.0, &format!("/v1/connections/{id}/refresh"), &body)?;
    // The body is optional: an empty POST asks for a plain refresh. A JSON `null` is not the
    // documented object and is refused like any other wrong body.
    let request: RefreshRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshRequest::default()
    } else {
        super::extract::require_json_content_type(&headers)?;
        parse_json(&body)?
    };
    may_refresh(&state, &caller, id, request.force).await?;
    let outcome = post
        .run(&state.pool, async |tx| {
            let enqueued = refresh::enqueue(tx, id, Trigger::Manual).await?;
            let accepted = RefreshAccepted { refresh_id: enqueued.job_id, coalesced: enqueued.coalesced };
            let body = serde_json::to_vec(&accepted).map_err(|error| ApiError::internal(&error))?;
            let location = format!("/v1/refreshes/{}", enqueued.job_id);
            Ok(((), StoredResponse { status: StatusCode::ACCEPTED.as_u16(), body, location: Some(location) }))
        })
        .await?;
    Ok(match outcome {
        Outcome::Done((), first) => idempotent::respond(first),
        Outcome::Replay(first) => idempotent::replay(first),
    })
}

/// Whether the caller may refresh the connection now: visible (else 404), `force` for helpdesk
/// and admin only, and not refused by the connection's state. The API and the console ask here.
pub(in crate::http) async fn may_refresh(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
    force: bool,
) -> Result<(), ApiError> {
    if force {
        caller.require(&[Role::Admin, Role::Helpdesk])?;
    }
    let connection = connection::store::get(&state.reads, id)
        .await?
        .filter(|connection| caller.0.can_see_tenant(connection.tenant_id))
        .ok_or_else(|| ApiError::not_found("No connection has that id."))?;
    refusal(&connection, force, state.refresh_cooldown)
}

fn refusal(connection: &connection::Connection, force: bool, cooldown: std::time::Duration) -> Result<(), ApiError> {
    if connection.state == connection::State::Disconnected {
        return Err(ApiError::new(StatusCode::CONFLICT, "connection_disconnected", "The connection is disconnected."));
    }
    if force {
        return Ok(());
    }
    if connection.paused {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "connection_paused",
            "Refreshes are paused; resume the connection first.",
        ));
    }
    if connection.state == connection::State::NeedsUserAction {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "waiting_for_user",
            "The bank needs the user to act first (see health.error); a refresh now would fail the same way.",
        ));
    }
    let since_success = connection.last_success_at.map(|at| Utc::now() - at);
    if let Some(elapsed) = since_success.and_then(|elapsed| elapsed.to_std().ok()).filter(|elapsed| *elapsed < cooldown)
    {
        let wait = (cooldown - elapsed).as_secs().max(1);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "refresh_cooldown",
            "The connection was refreshed moments ago.",
        )
        .with_retry_after(wait));
    }
    Ok(())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshView {
    pub refresh_id: i64,
    pub connection_id: Option<Uuid>,
    pub state: JobState,
    /// `created`, `manual`, `credentials`, `scheduled` or `bulk`.
    pub trigger: String,
    pub attempts: i32,
    pub max_attempts: i32,
    /// One entry per failed attempt: `{attempt, at, error}`.
    pub errors: serde_json::Value,
    /// Counts of accounts and added/modified/removed transactions, or the failure's code.
    pub result: Option<serde_json::Value>,
    /// When the next attempt may start, while it is pending.
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<jobs::store::JobRecord> for RefreshView {
    fn from(job: jobs::store::JobRecord) -> Self {
        let state = job.state;
        Self {
            refresh_id: job.job_id,
            connection_id: job.connection_id,
            next_attempt_at: (state == JobState::Available).then_some(job.run_at),
            state,
            trigger: job.trigger,
            attempts: job.attempt,
            max_attempts: job.max_attempts,
            errors: job.errors,
            result: job.result,
            created_at: job.created_at,
            started_at: job.started_at,
            finished_at: job.finished_at,
        }
    }
}

/// One refresh: state, attempts with their errors, timings, counts.
#[utoipa::path(get, operation_id = "get_refresh", path = "/v1/refreshes/{id}", tag = "refreshes", security(("api_key" = [])),
    params(("id" = i64, Path, description = "Refresh id", minimum = 1)),
    responses(
        (status = 200, description = "The refresh", body = RefreshView),
        (status = 404, description = "No such refresh visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<i64>,
) -> Result<axum::Json<RefreshView>, ApiError> {
    let job = jobs::store::get(&state.reads, id).await?.filter(|job| job.kind == refresh::KIND);
    let job = match job {
        Some(job) if visible(&state, &caller.0, job.connection_id).await? => job,
        _ => return Err(ApiError::not_found("No refresh has that id.")),
    };
    Ok(axum::Json(job.into()))
}

pub(in crate::http) async fn visible(
    state: &AppState,
    caller: &Principal,
    connection_id: Option<Uuid>,
) -> Result<bool, ApiError> {
    if caller.role != Role::Tenant {
        return Ok(true);
    }
    let Some(id) = connection_id else { return Ok(false) };
    Ok(connection::store::get(&state.reads, id)
        .await?
        .is_some_and(|connection| caller.can_see_tenant(connection.tenant_id)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryParams {
    /// At most this many, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Only refreshes older than this one (the last `refresh_id` of the previous page).
    #[param(minimum = 1)]
    pub before: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefreshHistory {
    pub items: Vec<RefreshView>,
    /// Pass as `before` for the next page; null on the last page.
    pub next_before: Option<i64>,
}

/// A connection's refreshes, newest first.
#[utoipa::path(get, operation_id = "list_connection_refreshes", path = "/v1/connections/{id}/refreshes", tag = "refreshes", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Connection id"), HistoryParams),
    responses(
        (status = 200, description = "Newest first", body = RefreshHistory),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<HistoryParams>,
) -> Result<axum::Json<RefreshHistory>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) || params.before.is_some_and(|before| before < 1) {
        return Err(ApiError::bad_request("invalid_query_parameter", "limit must be 1 to 200 and before at least 1."));
    }
    if !visible(&state, &caller.0, Some(id)).await? || connection::store::get(&state.reads, id).await?.is_none() {
        return Err(ApiError::not_found("No connection has that id."));
    }
    let mut rows = jobs::store::for_connection(&state.reads, id, params.before, i64::from(limit) + 1).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_before = if more { rows.last().map(|job| job.job_id) } else { None };
    Ok(axum::Json(RefreshHistory { items: rows.into_iter().map(RefreshView::from).collect(), next_before }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRefresh {
    pub institution_id: Option<Uuid>,
    pub state: Option<connection::State>,
    /// Connections whose current error is this catalogue code.
    #[schema(minimum = 1, maximum = 99999)]
    pub error_code: Option<i32>,
    pub tenant_id: Option<Uuid>,
    /// Count what would be refreshed without enqueuing anything.
    #[serde(default)]
    pub dry_run: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BulkRefreshResult {
    pub matched: usize,
    pub enqueued: usize,
    pub coalesced: usize,
    pub dry_run: bool,
}

const BULK_LIMIT: i64 = 10_000;

/// Refresh every connection matching the filters (helpdesk, admin). At least one filter is
/// required; at most 10,000 connections per request.
#[utoipa::path(post, operation_id = "bulk_refresh", path = "/v1/refreshes", tag = "refreshes", security(("api_key" = [])),
    request_body(content = BulkRefresh, example = json!({"state": "bank_issue", "dry_run": true})),
    responses((status = 200, description = "What was (or would be) enqueued", body = BulkRefreshResult)))]
pub async fn bulk(
    State(state): State<AppState>,
    _operator: Allowed<Operators>,
    Json(request): Json<BulkRefresh>,
) -> Result<axum::Json<BulkRefreshResult>, ApiError> {
    if request.institution_id.is_none()
        && request.state.is_none()
        && request.error_code.is_none()
        && request.tenant_id.is_none()
    {
        return Err(ApiError::validation(vec![FieldError::new(
            "body",
            "name at least one of institution_id, state, error_code, tenant_id",
        )]));
    }
    if request.error_code.is_some_and(|code| !(1..=99_999).contains(&code)) {
        return Err(ApiError::validation(vec![FieldError::new("error_code", "must be 1 to 99999")]));
    }
    let filter = ListFilter {
        tenant_id: request.tenant_id,
        state: request.state,
        institution_id: request.institution_id,
        // Checked to be 1 to 99999 above.
        error_code: request.error_code.and_then(|code| u32::try_from(code).ok()).map(crate::catalog::Code::new),
        ..ListFilter::default()
    };
    let matched: Vec<Uuid> = connection::store::list(&state.reads, &filter, None, BULK_LIMIT)
        .await?
        .into_iter()
        .filter(|connection| connection.state != connection::State::Disconnected)
        .map(|connection| connection.id)
        .collect();
    let mut result = BulkRefreshResult { matched: matched.len(), enqueued: 0, coalesced: 0, dry_run: request.dry_run };
    if request.dry_run {
        return Ok(axum::Json(result));
    }
    let mut tx = crate::database::begin(&state.pool).await?;
    for id in matched {
        let enqueued = refresh::enqueue(&mut tx, id, Trigger::Bulk).await?;
        if enqueued.coalesced { result.coalesced += 1 } else { result.enqueued += 1 }
    }
    tx.commit().await?;
    tracing::info!(matched = result.matched, enqueued = result.enqueued, "bulk refresh");
    Ok(axum::Json(result))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueView {
    /// Jobs by state.
    pub by_state: std::collections::BTreeMap<String, i64>,
    /// Available jobs whose start time has come.
    pub due: i64,
    /// Age of the oldest due job, in seconds.
    pub oldest_due_seconds: Option<f64>,
    /// Worker pools that reported within their lease, busy or idle, by id.
    pub workers: Vec<jobs::store::LiveWorker>,
}

/// Queue depth, age and workers (helpdesk, admin).
#[utoipa::path(get, operation_id = "get_queue", path = "/v1/queue", tag = "refreshes", security(("api_key" = [])),
    responses((status = 200, description = "The queue now", body = QueueView)))]
pub async fn queue(State(state): State<AppState>, caller: Caller) -> Result<axum::Json<QueueView>, ApiError> {
    caller.require(&[Role::Admin, Role::Helpdesk])?;
    let mut conn = state.pool.acquire().await?;
    let stats = jobs::store::stats(&mut conn).await?;
    Ok(axum::Json(QueueView {
        by_state: stats.by_state.into_iter().map(|(state, count)| (state.as_str().to_owned(), count)).collect(),
        due: stats.due,
        oldest_due_seconds: stats.oldest_due_seconds,
        workers: stats.workers,
    }))
}
