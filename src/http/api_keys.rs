//! `/v1/api-keys`: admins create, list and revoke keys. A key's text is returned once.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::{Admins, Allowed, Caller};
use super::extract::{Json, Path, Query};
use super::pagination::{Page, PageParams};
use super::problem::{ApiError, FieldError, Problem};
use crate::auth::store::{self, KeyInsert, KeyRecord};
use crate::auth::{NewKey, Role};

const MAX_LABEL: usize = 200;

/// A key to create. The role decides the shape: only tenant keys name a tenant.
// Read through the flat `CreateApiKeyFields` so that errors keep their field paths (serde loses
// them inside internally tagged enums); the document shows the tagged shape the rules enforce.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "role", rename_all = "snake_case", deny_unknown_fields, try_from = "CreateApiKeyFields")]
pub enum CreateApiKey {
    /// Everything: keys, catalogue edits, purges.
    Admin {
        #[serde(default)]
        #[schema(max_length = 200, example = "ops on-call")]
        label: String,
    },
    /// Reads every tenant; guarded actions.
    Helpdesk {
        #[serde(default)]
        #[schema(max_length = 200, example = "helpdesk dashboard")]
        label: String,
    },
    /// One tenant's data only.
    Tenant {
        tenant_id: Uuid,
        #[serde(default)]
        #[schema(max_length = 200, example = "books.example web app")]
        label: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyFields {
    role: Role,
    tenant_id: Option<Uuid>,
    #[serde(default)]
    label: String,
}

impl TryFrom<CreateApiKeyFields> for CreateApiKey {
    type Error = String;

    fn try_from(fields: CreateApiKeyFields) -> Result<Self, Self::Error> {
        // The messages quote the field in backticks so the problem names it.
        match (fields.role, fields.tenant_id) {
            (Role::Tenant, Some(tenant_id)) => Ok(Self::Tenant { tenant_id, label: fields.label }),
            (Role::Tenant, None) => Err("missing field `tenant_id`, required for the tenant role".into()),
            (_, Some(_)) => Err("`tenant_id` is only for tenant keys".into()),
            (Role::Admin, None) => Ok(Self::Admin { label: fields.label }),
            (Role::Helpdesk, None) => Ok(Self::Helpdesk { label: fields.label }),
        }
    }
}

impl CreateApiKey {
    fn parts(&self) -> (Role, Option<Uuid>, &str) {
        match self {
            Self::Admin { label } => (Role::Admin, None, label),
            Self::Helpdesk { label } => (Role::Helpdesk, None, label),
            Self::Tenant { tenant_id, label } => (Role::Tenant, Some(*tenant_id), label),
        }
    }
}

/// A new key with its text, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: KeyRecord,
    /// The key to send as `Authorization: Bearer <key>`. It is not stored and cannot be shown again.
    #[schema(example = "fw_0b1e…_9f3a…")]
    pub secret: String,
}

fn validate(label: &str) -> Result<(), ApiError> {
    if label.chars().count() > MAX_LABEL {
        return Err(ApiError::validation(vec![FieldError::new("label", format!("at most {MAX_LABEL} characters"))]));
    }
    Ok(())
}

/// Create an API key (admin).
#[utoipa::path(post, operation_id = "create_api_key", path = "/v1/api-keys", tag = "api-keys", security(("api_key" = [])),
    request_body(content = CreateApiKey, example = json!({"role": "tenant", "tenant_id": "00000000-0000-4000-8000-00000000de70", "label": "books.example web app"})),
    responses(
        (status = 201, description = "Created; the secret is shown only in this response", body = CreatedApiKey,
            headers(("location" = String, description = "The new key's URL"))),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    State(state): State<AppState>,
    Allowed(admin, _): Allowed<Admins>,
    Json(body): Json<CreateApiKey>,
) -> Result<(StatusCode, HeaderMap, axum::Json<CreatedApiKey>), ApiError> {
    let (role, tenant_id, label) = body.parts();
    validate(label)?;
    let key = NewKey::generate();
    let record = store::insert(
        &state.pool,
        &KeyInsert {
            id: key.id,
            secret_hash: &key.secret_hash,
            role,
            tenant_id,
            label,
            created_by: Some(admin.key_id),
        },
    )
    .await?;
    tracing::info!(key_id = %record.id, role = record.role.as_str(), "api key created");
    let mut headers = HeaderMap::from_iter([super::hygiene::no_store()]);
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/api-keys/{}", record.id)) {
        headers.insert(header::LOCATION, location);
    }
    let created = CreatedApiKey { key: record, secret: key.text.expose_secret().to_owned() };
    Ok((StatusCode::CREATED, headers, axum::Json(created)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Also list revoked keys (default false).
    pub include_revoked: Option<bool>,
}

/// List API keys, oldest first (admin).
#[utoipa::path(get, operation_id = "list_api_keys", path = "/v1/api-keys", tag = "api-keys", security(("api_key" = [])),
    params(PageParams, ListParams),
    responses((status = 200, description = "One page of keys", body = Page<KeyRecord>)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<PageParams>,
    Query(filters): Query<ListParams>,
) -> Result<axum::Json<Page<KeyRecord>>, ApiError> {
    caller.require(&[Role::Admin])?;
    let page = params.validate()?;
    let include_revoked = filters.include_revoked.unwrap_or(false);
    let rows = store::list(&state.reads, page.after, page.fetch_limit(), include_revoked).await?;
    Ok(axum::Json(Page::of(rows, &page, |row| (row.created_at, row.id))))
}

/// One API key (admin).
#[utoipa::path(get, operation_id = "get_api_key", path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key", body = KeyRecord),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<axum::Json<KeyRecord>, ApiError> {
    caller.require(&[Role::Admin])?;
    // A revoked key is gone for the API (its row stays, for the audit trail).
    let record = store::get(&state.reads, id)
        .await?
        .filter(|record| record.revoked_at.is_none())
        .ok_or_else(|| ApiError::not_found("No active API key has that id."))?;
    Ok(axum::Json(record))
}

/// Revoke an API key (admin). Requests with it fail from then on.
#[utoipa::path(delete, operation_id = "revoke_api_key", path = "/v1/api-keys/{id}", tag = "api-keys", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No active key has that id", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A key cannot revoke itself", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<Uuid>,
) -> Result<StatusCode, ApiError> {
    let admin = caller.require(&[Role::Admin])?;
    if admin.key_id == id {
        // Revoking the key in use could leave nobody able to administer the service.
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "cannot_revoke_own_key",
            "Use another admin key to revoke this one.",
        ));
    }
    if store::revoke(&state.pool, id).await? {
        state.keys.forget(id);
        tracing::info!(key_id = %id, "api key revoked");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("No active API key has that id."))
    }
}
