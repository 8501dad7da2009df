//! The only code that touches the catalogue tables.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use super::code::Code;
use super::model::{Alias, Entry, MatchKind, Namespace, NamespacedAlias, StoredEntry};

fn decode(body: serde_json::Value) -> Result<Entry, sqlx::Error> {
    serde_json::from_value(body).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

fn encode(entry: &Entry) -> Result<serde_json::Value, sqlx::Error> {
    serde_json::to_value(entry).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// A code as its `int` column holds it; one too large for the column is an error, not a clamp.
fn stored_code(code: Code) -> Result<i32, sqlx::Error> {
    i32::try_from(code).map_err(|error| sqlx::Error::Encode(Box::new(error)))
}

/// Serialises catalogue syncs of all replicas for the rest of the transaction.
pub async fn lock_for_sync(executor: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_advisory_xact_lock(hashtext('feedwatch.catalog.sync'))").execute(executor).await?;
    Ok(())
}

/// Inserts a new shipped entry or records a changed shipped text as a new revision; leaves an
/// entry whose shipped text is unchanged alone. Returns whether anything was written.
pub async fn sync_entry(conn: &mut PgConnection, entry: &Entry, fingerprint: &str) -> Result<bool, sqlx::Error> {
    let code = stored_code(entry.code)?;
    let current = sqlx::query!("select revision, shipped_hash from error_entry where code = $1 for update", code)
        .fetch_optional(&mut *conn)
        .await?;
    let body = encode(entry)?;
    let revision = match current {
        Some(row) if row.shipped_hash == fingerprint => return Ok(false),
        Some(row) => {
            sqlx::query!(
                "update error_entry set body = $2, reason = $3, revision = $4, shipped_hash = $5, updated_at = now()
                 where code = $1",
                code,
                body,
                entry.reason,
                row.revision + 1,
                fingerprint,
            )
            .execute(&mut *conn)
            .await?;
            row.revision + 1
        }
        None => {
            sqlx::query!(
                "insert into error_entry (code, reason, body, revision, shipped_hash) values ($1, $2, $3, 1, $4)",
                code,
                entry.reason,
                body,
                fingerprint,
            )
            .execute(&mut *conn)
            .await?;
            1
        }
    };
    record_revision(conn, code, revision, &body, "shipped", None).await?;
    Ok(true)
}

/// Keeps a text of an entry in its history: `origin` is `shipped` or `admin` (then `edited_by`).
async fn record_revision(
    conn: &mut PgConnection,
    code: i32,
    revision: i32,
    body: &serde_json::Value,
    origin: &str,
    edited_by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into error_entry_revision (code, revision, body, origin, edited_by) values ($1, $2, $3, $4, $5)",
        code,
        revision,
        body,
        origin,
        edited_by,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces every namespace and alias with the shipped ones, unless they are already equal.
pub async fn replace_aliases(
    conn: &mut PgConnection,
    aliases: &[NamespacedAlias],
    namespaces: &[Namespace],
) -> Result<bool, sqlx::Error> {
    let mut stored = self::aliases(&mut *conn).await?;
    let mut shipped = aliases.to_vec();
    let key = |alias: &NamespacedAlias| (alias.namespace.clone(), alias.alias.code.clone());
    stored.sort_by_key(key);
    shipped.sort_by_key(key);
    let mut stored_namespaces = self::namespaces(&mut *conn).await?;
    let mut shipped_namespaces = namespaces.to_vec();
    stored_namespaces.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    shipped_namespaces.sort_by(|a, b| a.namespace.cmp(&b.namespace));
    if stored == shipped && stored_namespaces == shipped_namespaces {
        return Ok(false);
    }
    sqlx::query!("delete from error_alias").execute(&mut *conn).await?;
    sqlx::query!("delete from error_namespace").execute(&mut *conn).await?;
    let names: Vec<String> = namespaces.iter().map(|n| n.namespace.clone()).collect();
    let providers: Vec<String> = namespaces.iter().map(|n| n.provider.clone()).collect();
    let called: Vec<serde_json::Value> = namespaces.iter().map(|n| serde_json::json!(n.called)).collect();
    sqlx::query!(
        "insert into error_namespace (namespace, provider, called)
         select * from unnest($1::text[], $2::text[], $3::jsonb[])",
        &names,
        &providers,
        &called,
    )
    .execute(&mut *conn)
    .await?;
    let canonical = aliases.iter().map(|a| stored_code(a.alias.canonical)).collect::<Result<Vec<i32>, _>>()?;
    let sources = aliases
        .iter()
        .map(|a| serde_json::to_value(&a.alias.sources).map_err(|error| sqlx::Error::Encode(Box::new(error))))
        .collect::<Result<Vec<_>, _>>()?;
    sqlx::query!(
        "insert into error_alias (namespace, code, canonical, match_kind, title, note, sources)
         select * from unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::jsonb[])",
        &aliases.iter().map(|a| a.namespace.clone()).collect::<Vec<_>>(),
        &aliases.iter().map(|a| a.alias.code.clone()).collect::<Vec<_>>(),
        &canonical,
        &aliases.iter().map(|a| match_text(a.alias.match_kind).to_owned()).collect::<Vec<_>>(),
        &aliases.iter().map(|a| a.alias.title.clone()).collect::<Vec<_>>(),
        &aliases.iter().map(|a| a.alias.note.clone()).collect::<Vec<_>>() as &[Option<String>],
        &sources,
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

fn match_text(kind: MatchKind) -> &'static str {
    match kind {
        MatchKind::Exact => "exact",
        MatchKind::Nearest => "nearest",
    }
}

/// The stored text back to its kind; anything else is a decode error, never a guess.
fn match_kind(text: &str) -> Result<MatchKind, sqlx::Error> {
    serde_json::from_value(serde_json::Value::from(text)).map_err(|error| sqlx::Error::Decode(Box::new(error)))
}

/// The channel the stored catalogue's changes travel on.
const CHANGED_CHANNEL: &str = "catalog_changed";

/// Tells every replica (this one included) that the catalogue changed; delivered on commit.
pub async fn notify_changed(executor: impl PgExecutor<'_>) -> Result<(), sqlx::Error> {
    sqlx::query!("select pg_notify($1, '')", CHANGED_CHANNEL).execute(executor).await?;
    Ok(())
}

/// What [`notify_changed`] sends, heard on a connection of its own.
#[derive(Debug)]
pub struct ChangeListener(PgListener);

/// Connects a listener and subscribes it to catalogue changes.
pub async fn listen_for_changes(pool: &PgPool) -> Result<ChangeListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANGED_CHANNEL).await?;
    Ok(ChangeListener(listener))
}

impl ChangeListener {
    /// Waits for the next change. Also returns `Ok` without one after the connection was lost
    /// and re-established, as a notification may have been missed; an error means the
    /// connection is lost now (the next call reconnects).
    pub async fn next_change(&mut self) -> Result<(), sqlx::Error> {
        self.0.try_recv().await.map(drop)
    }
}

pub async fn current_entries(executor: impl PgExecutor<'_>) -> Result<Vec<StoredEntry>, sqlx::Error> {
    sqlx::query!("select body, revision, updated_at from error_entry order by code")
        .fetch_all(executor)
        .await?
        .into_iter()
        .map(|row| Ok(StoredEntry { entry: decode(row.body)?, revision: row.revision, updated_at: row.updated_at }))
        .collect()
}

pub async fn aliases(executor: impl PgExecutor<'_>) -> Result<Vec<NamespacedAlias>, sqlx::Error> {
    sqlx::query!(
        "select namespace, code, canonical, match_kind, title, note, sources from error_alias order by namespace, code"
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(|row| {
        Ok(NamespacedAlias {
            namespace: row.namespace,
            alias: Alias {
                code: row.code,
                canonical: Code::try_from(row.canonical).map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
                match_kind: match_kind(&row.match_kind)?,
                title: row.title,
                note: row.note,
                sources: serde_json::from_value(row.sources).map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
            },
        })
    })
    .collect()
}

pub async fn namespaces(executor: impl PgExecutor<'_>) -> Result<Vec<Namespace>, sqlx::Error> {
    let rows = sqlx::query!(
        r#"select namespace, provider, called as "called: sqlx::types::Json<Vec<String>>"
           from error_namespace order by namespace"#
    )
    .fetch_all(executor)
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| Namespace { namespace: row.namespace, provider: row.provider, called: row.called.0 })
        .collect())
}

/// Locks an entry for an edit and returns its current revision.
pub async fn lock_entry(executor: impl PgExecutor<'_>, code: Code) -> Result<Option<i32>, sqlx::Error> {
    let Ok(code) = i32::try_from(code) else { return Ok(None) };
    sqlx::query_scalar!("select revision from error_entry where code = $1 for update", code)
        .fetch_optional(executor)
        .await
}

/// Stores an admin edit as the entry's current text and as a revision.
pub async fn save_admin_revision(
    conn: &mut PgConnection,
    entry: &Entry,
    revision: i32,
    editor: Uuid,
) -> Result<i32, sqlx::Error> {
    let code = stored_code(entry.code)?;
    let body = encode(entry)?;
    sqlx::query!(
        "update error_entry set body = $2, revision = $3, updated_at = now() where code = $1",
        code,
        body,
        revision,
    )
    .execute(&mut *conn)
    .await?;
    record_revision(conn, code, revision, &body, "admin", Some(editor)).await?;
    Ok(revision)
}

/// A past text of an entry.
#[derive(Debug, Clone)]
pub struct Revision {
    pub revision: i32,
    pub entry: Entry,
    pub origin: String,
    pub edited_by: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// An entry's revisions, newest first.
pub async fn revisions(executor: impl PgExecutor<'_>, code: Code) -> Result<Vec<Revision>, sqlx::Error> {
    let Ok(code) = i32::try_from(code) else { return Ok(Vec::new()) };
    sqlx::query!(
        "select revision, body, origin, edited_by, created_at from error_entry_revision where code = $1 order by revision desc",
        code
    )
    .fetch_all(executor)
    .await?
    .into_iter()
    .map(|row| {
        Ok(Revision {
            revision: row.revision,
            entry: decode(row.body)?,
            origin: row.origin,
            edited_by: row.edited_by,
            created_at: row.created_at,
        })
    })
    .collect()
}
