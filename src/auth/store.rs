//! The only code that touches the `api_key` table.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

use super::Role;

/// A key as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = ApiKeyView)]
pub struct KeyRecord {
    pub id: Uuid,
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a request needs to authenticate a key.
#[derive(Debug)]
pub struct KeyCredentials {
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    pub secret_hash: Vec<u8>,
}

struct KeyRow {
    id: Uuid,
    role: String,
    tenant_id: Option<Uuid>,
    label: String,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl KeyRow {
    fn into_record(self) -> Result<KeyRecord, sqlx::Error> {
        Ok(KeyRecord {
            id: self.id,
            role: parse_role(&self.role)?,
            tenant_id: self.tenant_id,
            label: self.label,
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

fn parse_role(text: &str) -> Result<Role, sqlx::Error> {
    // The table's check constraint makes any other value impossible.
    Role::parse(text).ok_or_else(|| sqlx::Error::Decode(format!("unknown role `{text}`").into()))
}

/// Fields of a key to create.
#[derive(Debug)]
pub struct KeyInsert<'a> {
    pub id: Uuid,
    pub secret_hash: &'a [u8],
    pub role: Role,
    pub tenant_id: Option<Uuid>,
    pub label: &'a str,
    pub created_by: Option<Uuid>,
}

pub async fn insert(executor: impl PgExecutor<'_>, key: &KeyInsert<'_>) -> Result<KeyRecord, sqlx::Error> {
    sqlx::query_as!(
        KeyRow,
        r#"insert into api_key (id, secret_hash, role, tenant_id, label, created_by)
           values ($1, $2, $3, $4, $5, $6)
           returning id, role, tenant_id, label, created_at, revoked_at"#,
        key.id,
        key.secret_hash,
        key.role.as_str(),
        key.tenant_id,
        key.label,
        key.created_by,
    )
    .fetch_one(executor)
    .await?
    .into_record()
}

/// Registers a configured key unless its id is already known; returns whether it was new.
pub async fn insert_if_absent(executor: impl PgExecutor<'_>, key: &KeyInsert<'_>) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        r#"insert into api_key (id, secret_hash, role, tenant_id, label)
           values ($1, $2, $3, $4, $5)
           on conflict (id) do nothing"#,
        key.id,
        key.secret_hash,
        key.role.as_str(),
        key.tenant_id,
        key.label,
    )
    .execute(executor)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// The credentials of a key that has not been revoked.
pub async fn find_active(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<KeyCredentials>, sqlx::Error> {
    let row =
        sqlx::query!(r#"select role, tenant_id, secret_hash from api_key where id = $1 and revoked_at is null"#, id)
            .fetch_optional(executor)
            .await?;
    row.map(|row| {
        Ok(KeyCredentials { role: parse_role(&row.role)?, tenant_id: row.tenant_id, secret_hash: row.secret_hash })
    })
    .transpose()
}

pub async fn get(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<KeyRecord>, sqlx::Error> {
    sqlx::query_as!(
        KeyRow,
        r#"select id, role, tenant_id, label, created_at, revoked_at from api_key where id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?
    .map(KeyRow::into_record)
    .transpose()
}

/// One page of keys in creation order, starting after `after` (a `(created_at, id)` position).
pub async fn list(
    executor: impl PgExecutor<'_>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
    include_revoked: bool,
) -> Result<Vec<KeyRecord>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    sqlx::query_as!(
        KeyRow,
        r#"select id, role, tenant_id, label, created_at, revoked_at
           from api_key
           where ($1::timestamptz is null or (created_at, id) > ($1, $2::uuid))
             and ($4 or revoked_at is null)
           order by created_at, id
           limit $3"#,
        after_time,
        after_id,
        limit,
        include_revoked,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(KeyRow::into_record)
    .collect()
}

/// Revokes a key; returns false when no active key has that id.
pub async fn revoke(executor: impl PgExecutor<'_>, id: Uuid) -> Result<bool, sqlx::Error> {
    let result = sqlx::query!(r#"update api_key set revoked_at = now() where id = $1 and revoked_at is null"#, id)
        .execute(executor)
        .await?;
    Ok(result.rows_affected() == 1)
}

/// Whether any key exists at all, revoked or not: a fresh database has none.
pub async fn any_exists(executor: impl PgExecutor<'_>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(r#"select exists(select 1 from api_key) as "exists!""#).fetch_one(executor).await
}
