//! The `keys` commands: a new API key, and re-sealing every secret under the newest
//! credentials key (bank credentials and webhook signing secrets alike), in small transactions
//! so a large fleet never holds long locks.

use anyhow::Context;
use secrecy::ExposeSecret;
use sqlx::PgPool;

use super::Database;
use crate::auth::{self, NewKey, Role};
use crate::config::DatabaseArgs;
use crate::seal::Sealer;

/// `feedwatch keys create`: prints a new key once.
pub async fn create_key(
    args: &DatabaseArgs,
    role: Role,
    tenant_id: Option<uuid::Uuid>,
    label: &str,
) -> anyhow::Result<String> {
    let database = Database::open(args).await?;
    let key = NewKey::generate();
    let insert =
        auth::store::KeyInsert { id: key.id, secret_hash: &key.secret_hash, role, tenant_id, label, created_by: None };
    let result = auth::store::insert(&database.pool, &insert).await;
    database.close().await;
    result.context("storing the key")?;
    Ok(key.text.expose_secret().to_owned())
}

/// `feedwatch keys rotate-credentials`: re-seals credentials under the newest key, in small
/// transactions so a large fleet never holds long locks. Returns how many were re-sealed.
pub async fn rotate_credentials(args: &DatabaseArgs) -> anyhow::Result<u64> {
    let database = Database::open(args).await?;
    let result = reseal_all(&database.pool, &database.sealer).await;
    database.close().await;
    result
}

pub async fn reseal_all(pool: &PgPool, sealer: &Sealer) -> anyhow::Result<u64> {
    use crate::connection::store as connections;
    let mut total = reseal_webhook_secrets(pool, sealer).await?;
    loop {
        let mut tx = crate::database::begin(pool).await?;
        let batch = connections::sealed_under_other_keys(&mut *tx, sealer.current_key_id(), 500).await?;
        if batch.is_empty() {
            return Ok(total);
        }
        for (id, blob, key_id) in &batch {
            let credentials = sealer.open(*id, key_id, blob).with_context(|| format!("connection {id}"))?;
            let (sealed, new_key) = sealer.seal(*id, &credentials)?;
            connections::reseal(&mut *tx, *id, &sealed, &new_key).await?;
        }
        tx.commit().await?;
        total += batch.len() as u64;
    }
}

/// Webhook signing secrets are sealed with the credentials keys too, so a rotation re-seals them.
async fn reseal_webhook_secrets(pool: &PgPool, sealer: &Sealer) -> anyhow::Result<u64> {
    use crate::webhook::{secret, store};
    let mut total = 0;
    loop {
        let mut tx = crate::database::begin(pool).await?;
        let batch = store::sealed_under_other_keys(&mut *tx, sealer.current_key_id(), 500).await?;
        if batch.is_empty() {
            return Ok(total);
        }
        for endpoint in &batch {
            let id = endpoint.id;
            // Both are sealed again under the current key, even one already under it: simpler
            // than telling which is stale, and cheap.
            let reseal = |(blob, key_id): &(Vec<u8>, String)| -> anyhow::Result<(Vec<u8>, String)> {
                let opened = secret::open(sealer, id, key_id, blob).with_context(|| format!("webhook {id}"))?;
                Ok(secret::seal(sealer, id, &opened)?)
            };
            let previous = endpoint.previous.as_ref().map(reseal).transpose()?;
            let resealed = store::SealedSecrets { id, current: reseal(&endpoint.current)?, previous };
            store::reseal(&mut *tx, &resealed).await?;
        }
        tx.commit().await?;
        total += batch.len() as u64;
    }
}
