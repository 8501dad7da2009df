//! The only code that touches the `institution` table.

use chrono::{DateTime, Utc};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{Institution, InstitutionFields, OfxSettings, ProviderKind};

struct Row {
    id: Uuid,
    slug: String,
    name: String,
    provider: String,
    ofx_url: Option<String>,
    ofx_org: String,
    ofx_fid: String,
    ofx_app_id: String,
    ofx_app_version: String,
    ofx_version: i32,
    aliases: Vec<String>,
    active: bool,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl Row {
    fn into_institution(self) -> Result<Institution, sqlx::Error> {
        let provider = ProviderKind::parse(&self.provider)
            .ok_or_else(|| sqlx::Error::Decode(format!("unknown provider `{}`", self.provider).into()))?;
        Ok(Institution {
            id: self.id,
            slug: self.slug,
            name: self.name,
            provider,
            ofx: OfxSettings {
                url: self.ofx_url,
                org: self.ofx_org,
                fid: self.ofx_fid,
                app_id: self.ofx_app_id,
                app_version: self.ofx_app_version,
                version: self.ofx_version,
            },
            aliases: self.aliases,
            active: self.active,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

pub async fn insert(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    fields: &InstitutionFields,
) -> Result<Institution, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"insert into institution (id, slug, name, provider, ofx_url, ofx_org, ofx_fid, ofx_app_id, ofx_app_version,
                                    ofx_version, aliases, active)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
           returning id, slug, name, provider, ofx_url, ofx_org, ofx_fid, ofx_app_id, ofx_app_version, ofx_version,
                     aliases, active, created_at, updated_at"#,
        id,
        fields.slug,
        fields.name,
        fields.provider.as_str(),
        fields.ofx.url,
        fields.ofx.org,
        fields.ofx.fid,
        fields.ofx.app_id,
        fields.ofx.app_version,
        fields.ofx.version,
        &fields.aliases,
        fields.active,
    )
    .fetch_one(executor)
    .await?
    .into_institution()
}

/// Creates or refreshes an institution known by slug (the sandbox bank's, at start), through
/// the same writes the API uses; an admin's deactivation stands. Replicas starting together may
/// race to create it: the loser's unique violation sends it to update the winner's row instead.
pub async fn upsert_by_slug(pool: &PgPool, fields: &InstitutionFields) -> Result<Uuid, sqlx::Error> {
    if let Some(id) = refresh_by_slug(pool, fields).await? {
        return Ok(id);
    }
    match insert(pool, Uuid::new_v4(), fields).await {
        Ok(institution) => Ok(institution.id),
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("23505") => {
            refresh_by_slug(pool, fields).await?.ok_or(sqlx::Error::Database(error))
        }
        Err(error) => Err(error),
    }
}

/// Updates the institution with `fields.slug`, keeping whether it is active; `None` if none has it.
async fn refresh_by_slug(pool: &PgPool, fields: &InstitutionFields) -> Result<Option<Uuid>, sqlx::Error> {
    let existing =
        sqlx::query!("select id, active from institution where slug = $1", fields.slug).fetch_optional(pool).await?;
    let Some(existing) = existing else { return Ok(None) };
    update(pool, existing.id, &InstitutionFields { active: existing.active, ..fields.clone() }).await?;
    Ok(Some(existing.id))
}

pub async fn update(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    fields: &InstitutionFields,
) -> Result<Option<Institution>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"update institution set slug = $2, name = $3, provider = $4, ofx_url = $5, ofx_org = $6, ofx_fid = $7,
                  ofx_app_id = $8, ofx_app_version = $9, ofx_version = $10, aliases = $11, active = $12, updated_at = now()
           where id = $1
           returning id, slug, name, provider, ofx_url, ofx_org, ofx_fid, ofx_app_id, ofx_app_version, ofx_version,
                     aliases, active, created_at, updated_at"#,
        id,
        fields.slug,
        fields.name,
        fields.provider.as_str(),
        fields.ofx.url,
        fields.ofx.org,
        fields.ofx.fid,
        fields.ofx.app_id,
        fields.ofx.app_version,
        fields.ofx.version,
        &fields.aliases,
        fields.active,
    )
    .fetch_optional(executor)
    .await?
    .map(Row::into_institution)
    .transpose()
}

pub async fn get(executor: impl PgExecutor<'_>, id: Uuid) -> Result<Option<Institution>, sqlx::Error> {
    sqlx::query_as!(
        Row,
        r#"select id, slug, name, provider, ofx_url, ofx_org, ofx_fid, ofx_app_id, ofx_app_version, ofx_version,
                  aliases, active, created_at, updated_at
           from institution where id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await?
    .map(Row::into_institution)
    .transpose()
}

/// The institutions among `ids` that exist, each beside its id; a row that does not decode is an
/// error for that institution alone. For refreshes starting together (`refresh::reader`).
pub async fn get_many(
    executor: impl PgExecutor<'_>,
    ids: &[Uuid],
) -> Result<Vec<(Uuid, Result<Institution, sqlx::Error>)>, sqlx::Error> {
    let rows = sqlx::query_as!(
        Row,
        r#"select id, slug, name, provider, ofx_url, ofx_org, ofx_fid, ofx_app_id, ofx_app_version, ofx_version,
                  aliases, active, created_at, updated_at
           from institution where id = any($1)"#,
        ids
    )
    .fetch_all(executor)
    .await?;
    Ok(rows.into_iter().map(|row| (row.id, row.into_institution())).collect())
}

/// One page of institutions in creation order, optionally matching `q` in name, slug or aliases.
pub async fn list(
    executor: impl PgExecutor<'_>,
    q: Option<&str>,
    after: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<Institution>, sqlx::Error> {
    let (after_time, after_id) = after.unzip();
    let pattern = q.map(|q| format!("%{}%", escape_like(q)));
    sqlx::query_as!(
        Row,
        r#"select id, slug, name, provider, ofx_url, ofx_org, ofx_fid, ofx_app_id, ofx_app_version, ofx_version,
                  aliases, active, created_at, updated_at
           from institution
           where ($1::timestamptz is null or (created_at, id) > ($1, $2::uuid))
             and ($3::text is null or name ilike $3 or slug ilike $3
                  or exists (select 1 from unnest(aliases) alias where alias ilike $3))
           order by created_at, id
           limit $4"#,
        after_time,
        after_id,
        pattern,
        limit,
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(Row::into_institution)
    .collect()
}

/// `%` and `_` in a search are literal characters, not wildcards.
pub fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// Connections of an institution by state, of one tenant or of all.
pub async fn connection_counts(
    executor: impl PgExecutor<'_>,
    id: Uuid,
    tenant_id: Option<Uuid>,
) -> Result<Vec<(String, i64)>, sqlx::Error> {
    Ok(sqlx::query!(
        r#"select state, count(*) as "count!" from connection
           where institution_id = $1 and ($2::uuid is null or tenant_id = $2)
           group by state order by state"#,
        id,
        tenant_id
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(|row| (row.state, row.count))
    .collect())
}
