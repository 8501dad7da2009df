//! Operations endpoints: liveness, readiness, metrics.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::problem::{ApiError, Problem};
use crate::database;

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// The process is alive. Never touches the database, so an orchestrator does not restart
/// healthy replicas during a database outage.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Status)))]
pub async fn healthz() -> axum::Json<Status> {
    axum::Json(Status { status: "ok" })
}

/// The instance can serve traffic: database reachable and every migration this binary knows
/// applied.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Not ready: database unreachable or schema behind", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Status>, ApiError> {
    readiness(&state).await.map(|()| axum::Json(Status { status: "ready" }))
}

/// How long readiness waits for the database: a probe must get its answer well within its own
/// timeout, and a database slower than this to answer one trivial query is not ready to serve.
const READINESS_TIMEOUT: Duration = Duration::from_millis(500);

/// The readiness check `/readyz` answers and `/metrics` exports as `feedwatch_ready`.
async fn readiness(state: &AppState) -> Result<(), ApiError> {
    let check = database::store::latest_applied_migration(&state.pool);
    let applied = match tokio::time::timeout(READINESS_TIMEOUT, check).await {
        Ok(Ok(applied)) => applied,
        Ok(Err(error)) => {
            tracing::warn!(%error, "readiness: database unreachable");
            return Err(not_ready("The database is not reachable."));
        }
        Err(_) => return Err(not_ready("The database did not answer within half a second.")),
    };
    let known = database::latest_known_migration();
    match applied {
        Some(version) if version >= known => Ok(()),
        _ => Err(not_ready("Database migrations are not applied yet.")),
    }
}

fn not_ready(detail: &str) -> ApiError {
    ApiError::unavailable("not_ready", detail, 5)
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Metrics in Prometheus text format", body = String, content_type = "text/plain; version=0.0.4")))]
pub async fn metrics(State(state): State<AppState>) -> Response {
    state.metrics.db_pool_connections.set(i64::from(state.pool.size()));
    // A connection kept between reads is idle too, though the pool counts it as lent.
    let idle = state.pool.num_idle() + state.reads.kept();
    state.metrics.db_pool_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
    state.metrics.db_pool_max.set(i64::from(state.pool.options().get_max_connections()));
    state.metrics.ready.set(i64::from(readiness(&state).await.is_ok()));
    // Queue figures come from the table, so every replica reports the same fleet-wide numbers.
    if let Ok(mut conn) = state.pool.acquire().await
        && let Ok(stats) = crate::jobs::store::stats(&mut conn).await
    {
        for (name, count) in stats.by_state {
            let labels = crate::telemetry::StateLabels { state: name.as_str().to_owned() };
            state.metrics.queue_depth.get_or_create(&labels).set(count);
        }
        state.metrics.queue_oldest_due_seconds.set(stats.oldest_due_seconds.unwrap_or(0.0));
        state.metrics.workers_live.set(i64::try_from(stats.workers.len()).unwrap_or(i64::MAX));
    }
    // Fleet health from the tallies: a few rows, whatever the fleet's size.
    if let Ok(rows) = crate::health::store::fleet_rows(&state.pool).await {
        let counts = crate::health::Counts::from_rows(&rows);
        for (name, count) in counts.by_state {
            state
                .metrics
                .connections
                .get_or_create(&crate::telemetry::StateLabels { state: name.to_owned() })
                .set(count);
        }
        state.metrics.connections_stale.set(counts.stale);
    }
    if let Ok(open) = crate::incident::store::open_expected_ends(&state.pool).await {
        state.metrics.incidents_open.set(i64::try_from(open.len()).unwrap_or(i64::MAX));
        state.metrics.set_open_incidents(
            open.into_iter().map(|(institution, ends)| (institution.to_string(), ends.timestamp())),
        );
    }
    let mut response = state.metrics.encode().into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"));
    response
}
