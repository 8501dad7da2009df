//! The only code that touches `idempotency_record`.

use sqlx::PgConnection;
use uuid::Uuid;

use super::{Claim, RETENTION, StoredResponse};

/// Claims `key` for this request, or finds the response of its first use.
pub async fn claim(conn: &mut PgConnection, api_key_id: Uuid, key: &str, hash: &[u8]) -> Result<Claim, sqlx::Error> {
    sqlx::query!(
        "delete from idempotency_record where api_key_id = $1 and key = $2 and expires_at < now()",
        api_key_id,
        key
    )
    .execute(&mut *conn)
    .await?;
    let expires_at = chrono::Utc::now() + RETENTION;
    let inserted = sqlx::query!(
        r#"insert into idempotency_record (api_key_id, key, request_hash, status, body, expires_at)
           values ($1, $2, $3, 0, '', $4)
           on conflict (api_key_id, key) do nothing"#,
        api_key_id,
        key,
        hash,
        expires_at,
    )
    .execute(&mut *conn)
    .await?;
    if inserted.rows_affected() == 1 {
        return Ok(Claim::New);
    }
    let first = sqlx::query!(
        "select request_hash, status, body, location from idempotency_record where api_key_id = $1 and key = $2",
        api_key_id,
        key
    )
    .fetch_one(&mut *conn)
    .await?;
    if first.request_hash != hash {
        return Ok(Claim::Mismatch);
    }
    Ok(Claim::Replay(StoredResponse {
        status: u16::try_from(first.status).unwrap_or(200),
        body: first.body,
        location: first.location,
    }))
}

/// Records the response of a claimed key; call in the transaction that did the work.
pub async fn complete(
    conn: &mut PgConnection,
    api_key_id: Uuid,
    key: &str,
    response: &StoredResponse,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update idempotency_record set status = $3, body = $4, location = $5 where api_key_id = $1 and key = $2",
        api_key_id,
        key,
        i16::try_from(response.status).unwrap_or(200),
        response.body,
        response.location,
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes expired records, a batch at a time; returns how many went.
pub async fn prune(conn: &mut PgConnection, batch: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query!(
        r#"delete from idempotency_record where (api_key_id, key) in
               (select api_key_id, key from idempotency_record where expires_at < now() limit $1)"#,
        batch
    )
    .execute(&mut *conn)
    .await?
    .rows_affected())
}
