//! Live sync: the shipped catalogue brought into PostgreSQL, admin edits stored as revisions, and
//! every replica's in-memory index rebuilt when the stored catalogue changes.

use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::index::CatalogIndex;
use super::load::Catalog;
use super::model::Entry;
use super::store;

/// A fingerprint of an entry's shipped text, to notice when a release changes it.
fn fingerprint(entry: &Entry) -> String {
    let canonical = serde_json::to_vec(entry).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}

/// Brings the stored catalogue up to the shipped one. Idempotent and safe on many replicas:
/// entries whose shipped text is unchanged keep their admin edits; a changed shipped text
/// becomes a new revision and wins. Returns whether anything changed.
pub async fn sync_shipped(pool: &PgPool, catalog: &Catalog) -> Result<bool, sqlx::Error> {
    let mut tx = crate::database::begin(pool).await?;
    store::lock_for_sync(&mut *tx).await?;
    let mut changed = false;
    for entry in catalog.entries.values() {
        changed |= store::sync_entry(&mut tx, entry, &fingerprint(entry)).await?;
    }
    changed |= store::replace_aliases(&mut tx, &catalog.aliases, &catalog.namespaces).await?;
    if changed {
        store::notify_changed(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(changed)
}

/// What a process asks of the catalogue, which decides what an index build prepares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// A server: lookups and searches, the search index built with the rest.
    Search,
    /// A worker: codes looked up for their retry rules and titles, never searched, so the
    /// search index (most of a build's time and memory) is left unbuilt.
    Lookup,
}

/// Who may read the current index, and who rebuilds it.
#[derive(Debug, Clone)]
pub struct CatalogHandle {
    sender: Arc<watch::Sender<Arc<CatalogIndex>>>,
    purpose: Purpose,
    /// Held from a reload's first read to its publication. Two reloads at once (the listener's
    /// first, and an edit's own) could otherwise publish in the other order than they read, the
    /// older index last: an edit answered 200 and then not shown.
    reloading: Arc<tokio::sync::Mutex<()>>,
}

impl CatalogHandle {
    /// Publishes `index`; later reloads prepare what `purpose` needs, as `index` should have.
    pub fn new(index: CatalogIndex, purpose: Purpose) -> Self {
        Self {
            sender: Arc::new(watch::channel(Arc::new(index.with_generation(1))).0),
            purpose,
            reloading: Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    /// The index as of now; cheap (an `Arc` clone under a brief read lock).
    pub fn current(&self) -> Arc<CatalogIndex> {
        self.sender.borrow().clone()
    }

    /// `read` applied to the index as of now, under the same brief read lock and without the
    /// `Arc` clone: for the hottest reads (a lookup), whose request threads would otherwise
    /// take turns on one reference count. `read` must not wait on anything.
    pub fn read<R>(&self, read: impl FnOnce(&Arc<CatalogIndex>) -> R) -> R {
        read(&self.sender.borrow())
    }

    /// Rebuilds the index from the database and publishes it.
    pub async fn reload(&self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let _reloading = self.reloading.lock().await;
        let index = load_index(pool, self.purpose).await?;
        self.publish(index);
        Ok(())
    }

    /// Makes `index` the current one, a generation after the one it replaces.
    fn publish(&self, index: CatalogIndex) {
        let mut replaced = None;
        self.sender.send_modify(|current| {
            let next = Arc::new(index.with_generation(current.generation() + 1));
            replaced = Some(std::mem::replace(current, next));
        });
        // Freed (if this was the last reference) after the lock is released, not under it.
        drop(replaced);
    }

    /// A receiver that wakes when a new index is published (tests and diagnostics).
    pub fn subscribe(&self) -> watch::Receiver<Arc<CatalogIndex>> {
        self.sender.subscribe()
    }
}

/// Builds the in-memory index from the stored catalogue, with what `purpose` needs. The build is
/// CPU work (the search index reads every entry and labelled example: tens of milliseconds, a
/// second in a debug build), so it runs on the blocking pool: on the runtime it held up every
/// request of the replica, and readiness probes timed out while a reload ran.
pub async fn load_index(pool: &PgPool, purpose: Purpose) -> Result<CatalogIndex, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let entries = store::current_entries(&mut *conn).await?;
    let aliases = store::aliases(&mut *conn).await?;
    let namespaces = store::namespaces(&mut *conn).await?;
    drop(conn);
    let build = move || {
        let index = CatalogIndex::build(entries, aliases, namespaces);
        if purpose == Purpose::Search {
            index.prepare_search();
        }
        index
    };
    match tokio::task::spawn_blocking(build).await {
        Ok(index) => Ok(index),
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // The runtime is shutting down: no index is needed any more.
        Err(error) => Err(sqlx::Error::Io(std::io::Error::other(error))),
    }
}

/// Stores an admin edit as a new revision; `expected_revision` guards against lost updates.
pub async fn save_edit(
    pool: &PgPool,
    edit: &Entry,
    expected_revision: Option<i32>,
    editor: Uuid,
) -> Result<EditOutcome, sqlx::Error> {
    let mut tx = crate::database::begin(pool).await?;
    let Some(current) = store::lock_entry(&mut *tx, edit.code).await? else {
        return Ok(EditOutcome::NotFound);
    };
    if expected_revision.is_some_and(|expected| expected != current) {
        return Ok(EditOutcome::Stale { current });
    }
    let revision = store::save_admin_revision(&mut tx, edit, current + 1, editor).await?;
    store::notify_changed(&mut *tx).await?;
    tx.commit().await?;
    Ok(EditOutcome::Saved { revision })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOutcome {
    Saved { revision: i32 },
    Stale { current: i32 },
    NotFound,
}

/// How long a lost listener waits before it tries again.
const RETRY_DELAY: Duration = Duration::from_secs(2);

/// Keeps this replica's index current: rebuilds on every change notification, and after a lost
/// listener connection (a notification may have been missed). Runs until `shutdown`.
pub async fn follow_changes(pool: PgPool, handle: CatalogHandle, shutdown: CancellationToken) {
    let mut listener = loop {
        match store::listen_for_changes(&pool).await {
            Ok(listener) => break listener,
            Err(error) => tracing::warn!(%error, "catalogue listener: cannot connect and LISTEN"),
        }
        if !wait_to_retry(&shutdown).await {
            return;
        }
    };
    loop {
        // First once LISTEN is in place (an edit committed between the start-up load and LISTEN
        // notified nobody), then after each notification, or a reconnect after which one may
        // have been missed.
        if let Err(error) = handle.reload(&pool).await {
            tracing::warn!(%error, "catalogue reload failed; keeping the previous index");
        }
        let next = tokio::select! {
            () = shutdown.cancelled() => return,
            next = listener.next_change() => next,
        };
        if let Err(error) = next {
            tracing::warn!(%error, "catalogue listener failed; retrying");
            if !wait_to_retry(&shutdown).await {
                return;
            }
        }
    }
}

/// Waits out [`RETRY_DELAY`]; false when shutdown comes first.
async fn wait_to_retry(shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(RETRY_DELAY) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successive_indexes_never_share_a_generation() {
        let handle = CatalogHandle::new(CatalogIndex::default(), Purpose::Search);
        let mut generations = vec![handle.current().generation()];
        for _ in 0..3 {
            // Each old index is freed before the next is built, so an address may be reused.
            handle.publish(CatalogIndex::default());
            generations.push(handle.current().generation());
        }
        assert!(generations.windows(2).all(|pair| pair[0] < pair[1]), "{generations:?}");
        assert_ne!(generations[0], CatalogIndex::default().generation(), "an unpublished index never matches");
    }
}
