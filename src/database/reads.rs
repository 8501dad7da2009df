//! Connections kept between reads. sqlx 0.8.6 pings every connection it takes back
//! (`return_to_pool`: a Sync and a wait for ReadyForQuery, unconditionally), so each pooled read
//! costs two round trips: its statement and that ping, each a wake-up of a backend and of a
//! request thread. Under a stream of page views the ping was 13 % of the service's CPU for one
//! connection read (bench/README, session 15). [`Reads`] lends the connection of a read that
//! finished cleanly to the next read instead of giving it back, so a busy service pays one round
//! trip per read.
//!
//! What the ping was for stays covered. A read that fails, or whose caller stopped waiting (its
//! future dropped mid-statement, which can leave the protocol half-way), is not kept: its
//! connection goes back to the pool, which pings it and drops it if it is broken. A kept
//! connection is lent again only for a short while ([`KEPT_FOR`]) after it left the pool; then it
//! goes back, by the next read or by a sweep that runs as often, so the pool's checks on acquire
//! (the failover's age test) see every connection several times a second, and an idle service's
//! connections are back in the pool (where `close` waits for them) soon after its last read.
//! At most half the pool's connections wait here: the other half always goes back to the pool,
//! so whoever waits there (a transaction, or a read that found none kept) is served.
//!
//! `&Reads` is an sqlx executor, so every store read that takes `impl PgExecutor` runs on it as
//! on the pool. Only single statements: a transaction begins on the pool.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt, stream};
use sqlx::pool::PoolConnection;
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Describe, Either, Execute, Executor, PgPool, Postgres};

/// How long a connection may go from read to read without passing through the pool.
const KEPT_FOR: Duration = Duration::from_millis(250);

/// The pool, and the connections of reads that finished cleanly, waiting for the next read.
#[derive(Debug, Clone)]
pub struct Reads(Arc<Shelf>);

#[derive(Debug)]
struct Shelf {
    pool: PgPool,
    kept: Mutex<Vec<Kept>>,
    most: usize,
    kept_for: Duration,
}

#[derive(Debug)]
struct Kept {
    connection: PoolConnection<Postgres>,
    /// When it left the pool.
    taken_at: Instant,
}

impl Reads {
    /// Reads over `pool`, keeping at most half its connections between them. Starts the sweep,
    /// which ends when the last clone is dropped.
    pub fn new(pool: PgPool) -> Self {
        Self::keeping_for(pool, KEPT_FOR)
    }

    /// [`Reads::new`] with another time a connection may stay out of the pool (tests).
    pub fn keeping_for(pool: PgPool, kept_for: Duration) -> Self {
        let most = usize::try_from(pool.options().get_max_connections() / 2).unwrap_or(usize::MAX);
        let kept = Mutex::new(Vec::with_capacity(most));
        let shelf = Arc::new(Shelf { pool, kept, most, kept_for });
        tokio::spawn(sweep(Arc::downgrade(&shelf)));
        Self(shelf)
    }

    /// Runs `read` on a kept connection or one from the pool, and keeps the connection if it
    /// finished without error.
    async fn on_a_connection<T>(
        self,
        read: impl AsyncFnOnce(&mut sqlx::PgConnection) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        let mut lent = self.0.lend().await?;
        let outcome = read(&mut lent.connection).await;
        self.0.settle(lent, &outcome);
        outcome
    }

    /// Connections waiting here for the next read: idle, though their pool counts them as lent.
    pub fn kept(&self) -> usize {
        self.0.kept.lock().expect("kept connections lock").len()
    }
}

impl Shelf {
    async fn lend(&self) -> Result<Kept, sqlx::Error> {
        if let Some(kept) = self.take_kept() {
            return Ok(kept);
        }
        Ok(Kept { connection: self.pool.acquire().await?, taken_at: Instant::now() })
    }

    /// The most recently kept connection still within its time; older ones go back to the
    /// pool on the way.
    fn take_kept(&self) -> Option<Kept> {
        let mut kept = self.kept.lock().expect("kept connections lock");
        while let Some(candidate) = kept.pop() {
            if self.is_fresh(&candidate) {
                return Some(candidate);
            }
            // Dropped: the pool pings it and lends it again through its own checks.
        }
        None
    }

    fn is_fresh(&self, kept: &Kept) -> bool {
        kept.taken_at.elapsed() < self.kept_for
    }

    /// Takes out every connection past its time (every one once the pool is closing).
    fn take_stale(&self) -> Vec<Kept> {
        let closing = self.pool.is_closed();
        let mut kept = self.kept.lock().expect("kept connections lock");
        let (fresh, stale) = kept.drain(..).partition(|candidate| self.is_fresh(candidate) && !closing);
        *kept = fresh;
        stale
    }

    /// Keeps the connection of a read that finished without error for the next read.
    fn settle<T>(&self, lent: Kept, outcome: &Result<T, sqlx::Error>) {
        if outcome.is_err() || !self.is_fresh(&lent) || self.pool.is_closed() {
            return;
        }
        let mut kept = self.kept.lock().expect("kept connections lock");
        if kept.len() < self.most {
            kept.push(lent);
        }
    }
}

/// Gives the connections past their time back to the pool, as often as that time, while the
/// reads exist.
async fn sweep(shelf: Weak<Shelf>) {
    let Some(kept_for) = shelf.upgrade().map(|shelf| shelf.kept_for) else { return };
    let mut every = tokio::time::interval(kept_for);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(shelf) = shelf.upgrade() else { return };
        // Dropped outside the lock: each goes back to the pool (pinged) in a task of its own.
        drop(shelf.take_stale());
    }
}

type Fetched = Result<Either<PgQueryResult, PgRow>, sqlx::Error>;

impl<'r> Executor<'r> for &'_ Reads {
    type Database = Postgres;

    /// Collects the statement's results before handing them out: a kept connection must have
    /// read its whole answer. Reads that stream very long answers use the pool.
    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> futures_util::stream::BoxStream<'e, Fetched>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let reads = self.clone();
        let all = async move {
            let results = reads
                .on_a_connection(async move |connection| connection.fetch_many(query).try_collect::<Vec<_>>().await)
                .await?;
            Ok::<_, sqlx::Error>(stream::iter(results.into_iter().map(Ok)))
        };
        stream::once(all).try_flatten().boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures_util::future::BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        let reads = self.clone();
        Box::pin(reads.on_a_connection(async move |connection| connection.fetch_optional(query).await))
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [PgTypeInfo],
    ) -> futures_util::future::BoxFuture<'e, Result<PgStatement<'q>, sqlx::Error>> {
        let reads = self.clone();
        Box::pin(reads.on_a_connection(async move |connection| connection.prepare_with(sql, parameters).await))
    }

    fn describe<'e, 'q: 'e>(
        self,
        sql: &'q str,
    ) -> futures_util::future::BoxFuture<'e, Result<Describe<Postgres>, sqlx::Error>> {
        let reads = self.clone();
        Box::pin(reads.on_a_connection(async move |connection| connection.describe(sql).await))
    }
}
