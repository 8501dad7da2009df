//! Demo mode: a tenant with a dozen connections to the sandbox bank in varied states, so a
//! newcomer's first curl shows real refreshes, errors and transactions.

use sqlx::PgPool;
use uuid::Uuid;

use crate::connection::lifecycle;
use crate::connection::store::{self as connections, NewConnection};
use crate::connection::{ChangedBy, Credentials, Sealer};
use crate::refresh::{self, SANDBOX_SLUG_PREFIX, Trigger};

/// The demo tenant, fixed so its data is easy to find (`?tenant_id=`).
pub const TENANT: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_de70);

/// (sandbox slug, display name, password): the password picks the sandbox's behaviour.
const CONNECTIONS: [(&str, &str, &str); 12] = [
    ("healthy", "Operating account", "pass_good"),
    ("healthy", "Payroll account", "pass_good"),
    ("healthy", "Company card", "pass_good"),
    ("flaky", "Credit union savings", "pass_good"),
    ("flaky", "Credit union checking", "pass_good"),
    ("maintenance", "Reserve savings", "pass_good"),
    ("slow", "Trust account", "pass_good"),
    ("rejecting", "Old bank login", "pass_good"),
    ("healthy", "Password changed at the bank", "error_103"),
    ("healthy", "Waiting for a verification code", "error_185"),
    ("healthy", "Renamed savings account", "error_324"),
    ("healthy", "Bank having an outage", "error_102"),
];

/// Seeds the demo tenant once (nothing happens if it has connections already); returns how
/// many connections were created.
pub async fn seed(pool: &PgPool, sealer: &Sealer) -> anyhow::Result<usize> {
    let mut tx = crate::database::begin(pool).await?;
    let existing = connections::list(
        &mut *tx,
        &crate::connection::ListFilter { tenant_id: Some(TENANT), ..Default::default() },
        None,
        1,
    )
    .await?;
    if !existing.is_empty() {
        return Ok(0);
    }
    let institutions = crate::institution::store::list(&mut *tx, Some(SANDBOX_SLUG_PREFIX), None, 100).await?;
    for (slug, name, password) in CONNECTIONS {
        let Some(institution) = institutions.iter().find(|i| i.slug == format!("{SANDBOX_SLUG_PREFIX}{slug}")) else {
            continue;
        };
        let id = Uuid::new_v4();
        let credentials =
            Credentials { user_id: "user_good".into(), password: password.into(), extra: Default::default() };
        let (sealed, key_id) = sealer.seal(id, &credentials)?;
        let new = NewConnection {
            id,
            tenant_id: TENANT,
            institution_id: institution.id,
            display_name: name,
            refresh_every_seconds: 86_400,
            credentials_sealed: &sealed,
            credentials_key_id: &key_id,
        };
        lifecycle::created(&mut tx, &new, &serde_json::json!({ "demo": true }), ChangedBy::SYSTEM).await?;
        refresh::enqueue(&mut tx, id, Trigger::Created).await?;
    }
    tx.commit().await?;
    Ok(CONNECTIONS.len())
}
