//! `GET /v1/connections/{id}/diagnosis`: the troubleshooting ladder over one connection.

use axum::extract::State;
use chrono::Utc;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::extract::Path;
use super::problem::{ApiError, Problem};
use crate::auth::Principal;
use crate::connection;
use crate::connection::diagnosis::{self, Facts, Finding, PendingRefresh, Verdict};
use crate::jobs::{self, JobState};

/// The ladder's findings in order; `answer` is the first failing one.
#[derive(Debug, Serialize, ToSchema)]
pub struct Diagnosis {
    pub connection_id: Uuid,
    pub state: connection::State,
    /// The first failing finding: what to fix first. Absent when every check passed.
    pub answer: Option<Finding>,
    pub findings: Vec<Finding>,
}

/// Run the troubleshooting ladder on a connection: institution incident, credentials, MFA,
/// missing accounts, duplicate names, other errors, silent stalls, staleness, automatic refreshes.
#[utoipa::path(get, operation_id = "diagnose_connection", path = "/v1/connections/{id}/diagnosis", tag = "connections", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Every check in order, and the answer", body = Diagnosis),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn diagnose(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Diagnosis>, ApiError> {
    Ok(axum::Json(build(&state, &caller.0, id).await?))
}

/// The ladder over a connection the caller may see (else 404): the API's answer and the
/// console's diagnosis panel.
pub(in crate::http) async fn build(state: &AppState, caller: &Principal, id: Uuid) -> Result<Diagnosis, ApiError> {
    // The connection's page read: its row, accounts and shared names (counted on write) at once.
    let connection::store::ConnectionDetail { connection, accounts, duplicate_account_names: duplicate_names } =
        super::connections::visible_parts(state, caller, id).await?;
    let pending = pending_refresh(state, id).await?;
    let catalog = state.catalog.current();
    let error = connection.error_code.and_then(|code| catalog.entry(code));
    let since = (Utc::now() - crate::feed::stall::LOOKBACK).date_naive();
    let activity = crate::feed::store::stall::activity(&state.reads, id, since).await?;
    let facts = Facts {
        connection: &connection,
        accounts: &accounts,
        duplicate_names: &duplicate_names,
        error: error.map(|stored| &stored.entry),
        pending: pending.as_ref(),
        activity: &activity,
        stalls: state.stalls,
        stale_after: chrono::TimeDelta::from_std(state.stale_after).unwrap_or(chrono::TimeDelta::MAX),
        now: Utc::now(),
    };
    let findings = diagnosis::diagnose(&facts);
    let answer = findings.iter().find(|finding| finding.verdict == Verdict::Fail).cloned();
    Ok(Diagnosis { connection_id: id, state: connection.state, answer, findings })
}

async fn pending_refresh(state: &AppState, id: Uuid) -> Result<Option<PendingRefresh>, ApiError> {
    let recent = jobs::store::for_connection(&state.reads, id, None, 5).await?;
    Ok(recent.into_iter().find(|job| matches!(job.state, JobState::Available | JobState::Running)).map(|job| {
        let last_error = job
            .errors
            .as_array()
            .and_then(|errors| errors.last())
            .and_then(|last| last.get("error").and_then(serde_json::Value::as_str).map(str::to_owned));
        PendingRefresh { run_at: job.run_at, running: job.state == JobState::Running, attempt: job.attempt, last_error }
    }))
}
