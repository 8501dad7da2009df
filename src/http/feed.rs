//! The transaction feed: a cursor sync per connection, and an account's transactions by date.

use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::Caller;
use super::extract::{Path, Query};
use super::pagination::{Page, PageParams};
use super::problem::{ApiError, FieldError, Problem};
use crate::connection;
use crate::feed::{self, Transaction};

#[derive(Debug, Serialize, ToSchema)]
pub struct RemovedView {
    pub id: Uuid,
    pub account_id: Uuid,
    pub fitid: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SyncView {
    pub added: Vec<Transaction>,
    pub modified: Vec<Transaction>,
    pub removed: Vec<RemovedView>,
    /// Pass back as `cursor`; keep it to resume later.
    #[schema(example = "1042")]
    pub next_cursor: String,
    /// More changes wait: call again with `next_cursor` now.
    pub has_more: bool,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncParams {
    /// `next_cursor` of the last call; absent or `0` for everything.
    #[param(pattern = "^[0-9]{1,18}$", example = "0")]
    pub cursor: Option<String>,
    /// Changes per call, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub count: Option<u32>,
}

/// Every added, modified and removed transaction of a connection since a cursor, exactly once
/// and in order.
#[utoipa::path(get, operation_id = "sync_transactions", path = "/v1/connections/{id}/transactions/sync", tag = "feed", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Connection id"), SyncParams),
    responses(
        (status = 200, description = "Changes after the cursor", body = SyncView),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sync(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(params): Query<SyncParams>,
) -> Result<axum::Json<SyncView>, ApiError> {
    let cursor = match params.cursor.as_deref() {
        None => 0,
        Some(text) => text.parse::<i64>().ok().filter(|cursor| *cursor >= 0 && text.len() <= 18).ok_or_else(|| {
            ApiError::bad_request("invalid_cursor", "The cursor is not one this server issued.")
                .with_errors(vec![FieldError::new("cursor", "a next_cursor from an earlier call")])
        })?,
    };
    let count = params.count.unwrap_or(100);
    if !(1..=500).contains(&count) {
        return Err(ApiError::bad_request("invalid_query_parameter", "count must be 1 to 500.")
            .with_errors(vec![FieldError::new("count", "must be 1 to 500")]));
    }
    connection::store::get(&state.reads, id)
        .await?
        .filter(|connection| caller.0.can_see_tenant(connection.tenant_id))
        .ok_or_else(|| ApiError::not_found("No connection has that id."))?;
    let rows = feed::store::changes_after(&state.reads, id, cursor, i64::from(count) + 1).await?;
    let page = feed::classify(rows, cursor, count as usize);
    Ok(axum::Json(SyncView {
        added: page.added,
        modified: page.modified,
        removed: page
            .removed
            .into_iter()
            .map(|t| RemovedView { id: t.id, account_id: t.account_id, fitid: t.fitid })
            .collect(),
        next_cursor: page.next_cursor.to_string(),
        has_more: page.has_more,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DateRange {
    /// Posted at or after.
    pub from: Option<DateTime<Utc>>,
    /// Posted before. A range that ends before it starts is empty.
    pub to: Option<DateTime<Utc>>,
}

/// An account's current transactions in posting order.
#[utoipa::path(get, operation_id = "list_account_transactions", path = "/v1/accounts/{id}/transactions", tag = "feed", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Account id"), DateRange, PageParams),
    responses(
        (status = 200, description = "One page of transactions", body = Page<Transaction>),
        (status = 404, description = "No such account visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn account_transactions(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
    Query(range): Query<DateRange>,
    Query(page): Query<PageParams>,
) -> Result<axum::Json<Page<Transaction>>, ApiError> {
    let page = page.validate()?;
    let tenant = connection::store::account_tenant(&state.reads, id).await?;
    if !tenant.is_some_and(|tenant| caller.0.can_see_tenant(tenant)) {
        return Err(ApiError::not_found("No account has that id."));
    }
    let rows = feed::store::for_account(&state.reads, id, range.from, range.to, page.after, page.fetch_limit()).await?;
    Ok(axum::Json(Page::of(rows, &page, |row| (row.posted_at, row.id))))
}
