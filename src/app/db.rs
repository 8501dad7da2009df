//! The database an instance runs on: DATABASE_URL or the private cluster, migrated, with the
//! sealer for bank credentials and the failover watcher of a multi-host URL.

use anyhow::Context;
use secrecy::{ExposeSecret, SecretString};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::DatabaseArgs;
use crate::connection::Sealer;
use crate::database;
use crate::database::failover::Failover;
use crate::devdb::{Durability, LocalPostgres};

/// A database to use, and the private server behind it when we started one.
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    /// Seals and opens bank credentials.
    pub sealer: Sealer,
    local: Option<LocalPostgres>,
    /// Moves the pools between the hosts of a multi-host DATABASE_URL.
    failover: Option<Failover>,
}

impl Database {
    /// Connects to DATABASE_URL, or starts the private cluster under `--data-dir`, then migrates.
    pub async fn open(args: &DatabaseArgs) -> anyhow::Result<Self> {
        let (url, local) = match &args.database_url {
            Some(url) => (url.expose_secret().to_owned(), None),
            None => {
                let local = LocalPostgres::start(&args.data_dir, Durability::Durable)
                    .await
                    .context("starting the private PostgreSQL (set DATABASE_URL to use another)")?;
                tracing::info!(
                    data_dir = %args.data_dir.display(),
                    port = local.port(),
                    as_postgres_user = local.runs_as_postgres_user(),
                    "private PostgreSQL started"
                );
                (local.url().to_owned(), Some(local))
            }
        };
        let (pool, failover) = database::connect(&url, args.db_max_connections).await?;
        database::migrate(&pool).await.context("applying database migrations")?;
        let sealer = credentials_sealer(args, local.is_some())?;
        Ok(Self { pool, sealer, local, failover })
    }

    /// With a multi-host DATABASE_URL: makes `companions` (pools built beside this one) move
    /// with it, and watches the hosts until `shutdown`.
    pub(super) fn follow_failover(
        &self,
        companions: &[&PgPool],
        shutdown: &CancellationToken,
    ) -> Option<JoinHandle<()>> {
        let failover = self.failover.as_ref()?;
        for pool in companions {
            failover.adopt(pool);
        }
        Some(tokio::spawn(failover.clone().follow(shutdown.clone())))
    }

    /// Closes the pool, then stops the private server if we started one.
    pub async fn close(self) {
        self.pool.close().await;
        if let Some(local) = self.local {
            local.stop().await;
        }
    }
}

/// The configured credentials keys; for the private PostgreSQL, a key file beside its data
/// directory (created on first start) so a newcomer needs no configuration.
fn credentials_sealer(args: &DatabaseArgs, private_database: bool) -> anyhow::Result<Sealer> {
    if let Some(keys) = &args.credentials_keys {
        return Sealer::from_config(keys).context("FEEDWATCH_CREDENTIALS_KEYS");
    }
    if !private_database {
        anyhow::bail!(
            "FEEDWATCH_CREDENTIALS_KEYS is required with DATABASE_URL: bank credentials are sealed with it \
             (generate one with `feedwatch keys new-credentials-key`)"
        );
    }
    let path = std::path::absolute(&args.data_dir)?.with_extension("credentials-keys");
    if !path.exists() {
        let generated = Sealer::generate_config("local1");
        write_secret_file(&path, generated.expose_secret())?;
        tracing::info!(path = %path.display(), "generated a credentials key for the private database");
    }
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Sealer::from_config(&SecretString::from(text.trim().to_owned())).with_context(|| path.display().to_string())
}

fn write_secret_file(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}
