//! `GET /v1/accounts/{id}/coverage`: the days an account's transactions are known for (from
//! refreshes and imports) and the gaps between them.

use axum::extract::State;

use super::AppState;
use super::auth::Caller;
use super::extract::Path;
use super::problem::{ApiError, Problem};
use crate::connection;
use crate::feed::{self, coverage::Coverage};
use uuid::Uuid;

/// The date ranges refreshes and imports have covered for an account, and the gaps between.
#[utoipa::path(get, operation_id = "get_account_coverage", path = "/v1/accounts/{id}/coverage", tag = "feed", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Account id")),
    responses(
        (status = 200, description = "Covered spans (with their sources) and gaps", body = Coverage),
        (status = 404, description = "No such account visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Coverage>, ApiError> {
    let tenant = connection::store::account_tenant(&state.reads, id).await?;
    if !tenant.is_some_and(|tenant| caller.0.can_see_tenant(tenant)) {
        return Err(ApiError::not_found("No account has that id."));
    }
    let ranges = feed::store::coverage(&state.reads, id).await?;
    Ok(axum::Json(feed::coverage::summarise(ranges)))
}
