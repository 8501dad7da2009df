//! `GET /v1/health/summary`: the fleet at a glance for helpdesk dashboards.

use std::collections::BTreeMap;

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::extract::Query;
use super::problem::{ApiError, FieldError, Problem};
use crate::auth::{Principal, Role};
use crate::catalog::{CatalogIndex, Code};
use crate::health::{Counts, InstitutionCount, Scope, store};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SummaryParams {
    /// Only this tenant's connections (helpdesk and admin; a tenant key always gets its own).
    pub tenant_id: Option<Uuid>,
    /// Only this institution's connections.
    pub institution_id: Option<Uuid>,
    /// How many failing institutions to list.
    #[param(minimum = 1, maximum = 100, default = 10)]
    pub top: Option<u32>,
}

/// What the summary covers.
#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryScope {
    pub tenant_id: Option<Uuid>,
    pub institution_id: Option<Uuid>,
}

/// Connections with one current error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorCount {
    #[schema(value_type = i32)]
    pub code: Code,
    /// The catalogue entry's title; absent for a code the catalogue does not know.
    pub title: Option<String>,
    pub connections: i64,
}

/// An institution ranked by its failing connections.
#[derive(Debug, Serialize, ToSchema)]
pub struct FailingInstitution {
    pub id: Uuid,
    pub name: String,
    pub connections: i64,
    /// Connections degraded, waiting for the user, or failing at the bank or provider.
    pub failing: i64,
    pub stale: i64,
}

/// Connections gone too long without a successful refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaleCount {
    pub connections: i64,
    /// The staleness limit, in seconds.
    pub stale_after_seconds: u64,
}

/// Connections whose refreshes succeed while an account brings nothing new for far longer than
/// its usual rhythm (error 721, `connection.stalled`); they are also among the degraded.
#[derive(Debug, Serialize, ToSchema)]
pub struct StalledCount {
    pub connections: i64,
}

/// Refresh work waiting and running.
#[derive(Debug, Serialize, ToSchema)]
pub struct Backlog {
    /// Jobs waiting, due or scheduled later.
    pub available: i64,
    /// Waiting jobs whose start time has come.
    pub due: i64,
    pub running: i64,
    /// Age of the oldest due job, in seconds.
    pub oldest_due_seconds: Option<f64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthSummary {
    pub scope: SummaryScope,
    /// Connections in scope, disconnected ones included.
    pub connections: i64,
    /// Connections by state; every state is listed.
    pub by_state: BTreeMap<String, i64>,
    /// Connections with a current error, by catalogue code, most first.
    pub by_error_code: Vec<ErrorCount>,
    /// Institutions with the most failing connections, most first; only those with any.
    pub failing_institutions: Vec<FailingInstitution>,
    pub stale: StaleCount,
    pub stalled: StalledCount,
    /// The refresh queue (helpdesk and admin only: it is shared by every tenant).
    pub queue: Option<Backlog>,
    pub open_incidents: i64,
    pub generated_at: DateTime<Utc>,
}

/// Counts by state, error code and institution, stale connections, the queue and open
/// incidents, for the whole fleet, one tenant or one institution. Served from tallies, so it
/// costs the same at a thousand connections as at a million.
#[utoipa::path(get, operation_id = "get_health_summary", path = "/v1/health/summary", tag = "health", security(("api_key" = [])),
    params(SummaryParams),
    responses(
        (status = 200, description = "The summary", body = HealthSummary),
        (status = 400, description = "A parameter is not valid", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn summary(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<SummaryParams>,
) -> Result<axum::Json<HealthSummary>, ApiError> {
    let top = i64::from(params.top.unwrap_or(10));
    if !(1..=100).contains(&top) {
        return Err(ApiError::bad_request("invalid_query_parameter", "Some parameters are not valid.")
            .with_errors(vec![FieldError::new("top", "must be between 1 and 100")]));
    }
    Ok(axum::Json(build(&state, &caller.0, params.tenant_id, params.institution_id, top).await?))
}

/// The summary a caller may see: the API answers it, the console's overview shows it.
pub(in crate::http) async fn build(
    state: &AppState,
    caller: &Principal,
    tenant_id: Option<Uuid>,
    institution_id: Option<Uuid>,
    top: i64,
) -> Result<HealthSummary, ApiError> {
    let tenant_id = caller.scope_tenant(tenant_id);
    let scope = match (tenant_id, institution_id) {
        (Some(tenant), _) => Scope::Tenant(tenant),
        (None, Some(institution)) => Scope::Institution(institution),
        (None, None) => Scope::Fleet,
    };
    let fleet_wide = matches!(caller.role, Role::Admin | Role::Helpdesk);
    let store::Summary { rows, failing, queue, open_incidents } =
        store::summary(&state.reads, scope, institution_id, top, fleet_wide).await?;
    let counts = Counts::from_rows(&rows);
    Ok(HealthSummary {
        scope: SummaryScope { tenant_id, institution_id },
        connections: counts.connections,
        by_state: counts.by_state.iter().map(|(state, count)| ((*state).to_owned(), *count)).collect(),
        by_error_code: error_counts(&counts, &state.catalog.current()),
        failing_institutions: failing.into_iter().map(FailingInstitution::from).collect(),
        stale: StaleCount { connections: counts.stale, stale_after_seconds: state.stale_after.as_secs() },
        stalled: StalledCount { connections: counts.by_error_code.get(&Code::FEED_STALLED).copied().unwrap_or(0) },
        queue: queue.map(|backlog| Backlog {
            available: backlog.available,
            due: backlog.due,
            running: backlog.running,
            oldest_due_seconds: backlog.oldest_due_seconds,
        }),
        open_incidents,
        generated_at: Utc::now(),
    })
}

fn error_counts(counts: &Counts, catalog: &CatalogIndex) -> Vec<ErrorCount> {
    let mut errors: Vec<ErrorCount> = counts
        .by_error_code
        .iter()
        .map(|(code, connections)| ErrorCount {
            code: *code,
            title: catalog.entry(*code).map(|stored| stored.entry.title.clone()),
            connections: *connections,
        })
        .collect();
    errors.sort_by(|a, b| b.connections.cmp(&a.connections).then(a.code.cmp(&b.code)));
    errors
}

impl From<InstitutionCount> for FailingInstitution {
    fn from(count: InstitutionCount) -> Self {
        Self {
            id: count.institution_id,
            name: count.name,
            connections: count.connections,
            failing: count.failing,
            stale: count.stale,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_counts_are_most_first() {
        let by_error_code = BTreeMap::from([(Code::new(102), 1), (Code::new(103), 5), (Code::new(185), 5)]);
        let counts = Counts { by_error_code, ..Counts::default() };
        let catalog = CatalogIndex::default();
        let codes: Vec<u32> = error_counts(&counts, &catalog).iter().map(|count| count.code.get()).collect();
        assert_eq!(codes, [103, 185, 102]);
    }
}
