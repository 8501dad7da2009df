//! Group read of what refreshes need before they call the bank: the connection's target (its
//! state, sealed credentials, known accounts) and its institution's settings. A pool claims jobs
//! several at a time and their handlers start together; each asked for its connection and then
//! its institution, two statements per refresh, which were most of a repeat refresh's round
//! trips once the writer shared its statements and commit across a batch (bench/README, session
//! 37). The reader answers every refresh waiting with one statement for the targets and one for
//! their institutions.
//!
//! Like the writer it never waits for a batch to fill: it takes what has asked (at least one)
//! after letting the tasks ready to run ask too, so a lone refresh is read at once; what asks
//! while a read is under way makes the next one. Reads write nothing, so a process killed here
//! loses nothing, and a failed read fails only the refreshes in it, which the queue retries.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::connection::store::{self as connection_store, RefreshTarget};
use crate::institution::{self, Institution};

/// Most refreshes one read answers: a claim of the pool's default prefetch and more.
const BATCH: usize = 128;

/// What a refresh reads before it calls the bank.
#[derive(Debug, Clone)]
pub(super) struct Read {
    pub target: RefreshTarget,
    /// None when the institution is gone, which the refresh reports as a misconfiguration.
    pub institution: Option<Arc<Institution>>,
}

/// The database could not answer this refresh's read; shared by the refreshes it was read with.
#[derive(Debug, Clone)]
pub(super) struct ReadFailed(Arc<sqlx::Error>);

impl fmt::Display for ReadFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

type Answer = Result<Option<Read>, ReadFailed>;
type Asked = (Uuid, oneshot::Sender<Answer>);

/// A pool's reader, started by the first refresh that asks; it stops when its owner (the pool's
/// `Refresher`) is dropped.
#[derive(Debug, Default)]
pub struct Reader {
    sender: OnceLock<mpsc::Sender<Asked>>,
}

impl Reader {
    /// What the refresh of `connection_id` needs, or None when the connection no longer exists.
    pub(super) async fn read(&self, pool: impl FnOnce() -> PgPool, connection_id: Uuid) -> Answer {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(BATCH * 8);
            tokio::spawn(run(pool(), receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        if sender.send((connection_id, reply)).await.is_err() {
            return Err(stopped());
        }
        answer.await.unwrap_or_else(|_| Err(stopped()))
    }
}

fn stopped() -> ReadFailed {
    ReadFailed(Arc::new(sqlx::Error::PoolClosed))
}

async fn run(pool: PgPool, mut receiver: mpsc::Receiver<Asked>) {
    while let Some(first) = receiver.recv().await {
        // The handlers of one claim start together: let those ready to run ask before reading.
        tokio::task::yield_now().await;
        let mut asked = vec![first];
        while asked.len() < BATCH {
            let Ok(more) = receiver.try_recv() else { break };
            asked.push(more);
        }
        answer(&pool, asked).await;
    }
}

/// Reads every asked connection once and answers each asker.
async fn answer(pool: &PgPool, asked: Vec<Asked>) {
    let mut ids: Vec<Uuid> = asked.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    match read_many(pool, &ids).await {
        Ok(answers) => {
            for (id, reply) in asked {
                // A connection asked twice (a lost attempt and its successor) is answered twice.
                let _ = reply.send(answers.get(&id).cloned().unwrap_or(Ok(None)));
            }
        }
        Err(error) => {
            let failed = ReadFailed(Arc::new(error));
            for (_, reply) in asked {
                let _ = reply.send(Err(failed.clone()));
            }
        }
    }
}

/// The answers for `ids` (distinct) that exist: two statements on one pooled connection.
async fn read_many(pool: &PgPool, ids: &[Uuid]) -> Result<HashMap<Uuid, Answer>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    let targets = connection_store::refresh_targets(&mut *conn, ids).await?;
    let mut institution_ids: Vec<Uuid> =
        targets.iter().filter_map(|(_, target)| target.as_ref().ok().map(|t| t.institution_id)).collect();
    institution_ids.sort_unstable();
    institution_ids.dedup();
    let institutions: HashMap<Uuid, Result<Arc<Institution>, ReadFailed>> =
        institution::store::get_many(&mut *conn, &institution_ids)
            .await?
            .into_iter()
            .map(|(id, institution)| (id, institution.map(Arc::new).map_err(|error| ReadFailed(Arc::new(error)))))
            .collect();
    Ok(targets
        .into_iter()
        .map(|(id, target)| {
            let answer = target.map_err(|error| ReadFailed(Arc::new(error))).and_then(|target| {
                let institution = institutions.get(&target.institution_id).cloned().transpose()?;
                Ok(Some(Read { target, institution }))
            });
            (id, answer)
        })
        .collect())
}
