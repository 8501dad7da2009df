//! `/v1/connections/{id}/accounts`: a connection's bank accounts, and renaming, hiding or
//! remapping one in the books. Tenancy is the connection's.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::AppState;
use super::auth::{Allowed, Caller, Writers};
use super::connections::{actor, visible};
use super::extract::{Json, Path};
use super::problem::{self, ApiError, FieldError, Problem};
use crate::connection::store::{AccountChanges, AccountUpdate};
use crate::connection::{self, Account, AccountState};

/// A connection's accounts.
#[utoipa::path(get, operation_id = "list_accounts", path = "/v1/connections/{id}/accounts", tag = "connections", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Connection id")),
    responses(
        (status = 200, description = "Its accounts", body = Vec<Account>),
        (status = 404, description = "No such connection visible to this key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<Vec<Account>>, ApiError> {
    visible(&state, &caller.0, id).await?;
    let accounts = connection::store::accounts(&state.reads, id).await?;
    Ok(axum::Json(accounts))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchAccount {
    /// The account's name in the books.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub display_name: Option<String>,
    /// Hide from the books (still refreshed), or show again.
    pub hidden: Option<bool>,
    /// Remap to the bank's new id for this account: how error 324 is fixed without losing history.
    /// No spaces or control characters (what `char::is_whitespace` and `is_control` refuse).
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x20\x7f-\x9f\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub bank_account_id: Option<String>,
}

/// Rename, hide or show, or remap an account.
#[utoipa::path(patch, operation_id = "update_account", path = "/v1/connections/{id}/accounts/{account_id}", tag = "connections", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Connection id"), ("account_id" = Uuid, Path, description = "Account id")),
    request_body(content = PatchAccount, example = json!({"display_name": "Operating (old card)", "hidden": false})),
    responses(
        (status = 200, description = "Updated", body = Account),
        (status = 404, description = "No such connection or account visible to this key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another account of the connection already has that bank id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn patch(
    State(state): State<AppState>,
    Allowed(principal, _): Allowed<Writers>,
    Path((id, account_id)): Path<(Uuid, Uuid)>,
    Json(input): Json<PatchAccount>,
) -> Result<axum::Json<Account>, ApiError> {
    visible(&state, &principal, id).await?;
    let mut errors = Vec::new();
    if input.display_name.as_deref().is_some_and(|name| !connection::valid_name(name)) {
        errors.push(FieldError::new("display_name", "must be 1 to 200 characters"));
    }
    let bank_id_ok = |bank_id: &str| {
        // Characters, as the document's maxLength and the column's check count them.
        (1..=64).contains(&bank_id.chars().count()) && !bank_id.chars().any(|c| c.is_control() || c.is_whitespace())
    };
    if input.bank_account_id.as_deref().is_some_and(|bank_id| !bank_id_ok(bank_id)) {
        errors.push(FieldError::new("bank_account_id", "1 to 64 characters without spaces"));
    }
    if input.display_name.is_none() && input.hidden.is_none() && input.bank_account_id.is_none() {
        errors.push(FieldError::new("body", "name at least one of display_name, hidden, bank_account_id"));
    }
    problem::reject_invalid(errors)?;
    let before = connection::store::accounts(&state.reads, id)
        .await?
        .into_iter()
        .find(|account| account.id == account_id)
        .ok_or_else(|| ApiError::not_found("The connection has no account with that id."))?;
    let changes = AccountChanges {
        display_name: input.display_name.as_deref().map(str::trim),
        hidden: input.hidden,
        bank_account_id: input.bank_account_id.as_deref(),
    };
    let mut tx = crate::database::begin(&state.pool).await?;
    let updated = match connection::store::update_account(&mut *tx, id, account_id, &changes).await? {
        AccountUpdate::Updated(account) => *account,
        AccountUpdate::NotFound => return Err(ApiError::not_found("The connection has no account with that id.")),
        AccountUpdate::BankIdTaken => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "bank_account_id_taken",
                "Another account of this connection has that bank id.",
            )
            .with_errors(vec![FieldError::new("bank_account_id", "already used by another account")]));
        }
    };
    for (kind, detail) in account_events(&before, &updated) {
        connection::store::insert_event(&mut *tx, id, kind, &detail, actor(&principal)).await?;
    }
    tx.commit().await?;
    Ok(axum::Json(updated))
}

fn account_events(before: &Account, after: &Account) -> Vec<(&'static str, serde_json::Value)> {
    let mut events = Vec::new();
    let base = serde_json::json!({ "account_id": after.id });
    let with = |mut value: serde_json::Value, extra: serde_json::Value| {
        if let (Some(target), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
        value
    };
    if before.display_name != after.display_name {
        events.push((
            "account.renamed",
            with(base.clone(), serde_json::json!({ "from": before.display_name, "to": after.display_name })),
        ));
    }
    if before.bank_account_id != after.bank_account_id {
        let detail = serde_json::json!({ "from": before.bank_account_id, "to": after.bank_account_id });
        events.push(("account.remapped", with(base.clone(), detail)));
    }
    if before.state != after.state {
        let kind = if after.state == AccountState::Hidden { "account.hidden" } else { "account.state_changed" };
        events
            .push((kind, with(base, serde_json::json!({ "from": before.state.as_str(), "to": after.state.as_str() }))));
    }
    events
}
