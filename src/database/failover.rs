//! Following the usable server of a multi-host `DATABASE_URL` (a primary and its standbys).
//! sqlx 0.8.6 connects each pool to one host, so this is the one owner of "which host": it picks
//! the first host that fits at start, hands its options to every pool of the service, and a
//! watcher probes that host. When the host stops answering or stops fitting (a standby, or
//! read-only), the watcher tries the hosts again in order, with backoff, and moves every pool to
//! the first that fits (`Pool::set_connect_options`). Meanwhile requests meet a closed or refused
//! connection and answer 503 `database_unavailable` (`database::is_unavailable`).
//!
//! Three things keep the pools off a server that no longer fits, none of them a statement per
//! acquire: with `read-write` or `primary`, every new connection asks the server what it is (one
//! statement per connection) and is refused if it does not fit; a connection opened before the
//! pools last moved is closed when next acquired (a comparison of its age); and on a move the
//! watcher ends the pools' sessions on the host left, if it still answers (a primary turned
//! read-only, or back as a standby), so idle connections and `LISTEN`s reconnect to the new one.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::hosts::{Candidate, ServerRole, Target};

/// How often the watcher asks the current host whether it still fits.
const PROBE_EVERY: Duration = Duration::from_millis(500);
/// Longest a probe (connect and one statement) may take before the host counts as gone.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// The first and the longest wait between two rounds over every host.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_LONGEST: Duration = Duration::from_secs(2);
/// How long a start waits for some host to fit (a failover may be under way).
const START_WAIT: Duration = Duration::from_secs(10);
/// The watcher's own sessions, told apart from the pools' in `pg_stat_activity`.
const PROBE_APPLICATION: &str = "feedwatch-failover";
/// How often the watcher forgets the sessions that have ended on the current host.
const FORGET_ENDED_EVERY: Duration = Duration::from_secs(60);

/// The hosts, the one in use, and the pools that follow it. Cloning shares them.
#[derive(Debug, Clone)]
pub struct Failover(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    candidates: Vec<Candidate>,
    target: Target,
    current: AtomicUsize,
    pools: Mutex<Vec<PgPool>>,
    /// When the pools last moved to another host.
    moved_at: Mutex<Option<Instant>>,
    /// The pools' sessions (listeners included) by host, ended on a host the pools leave.
    sessions: Mutex<Vec<Session>>,
    /// Wakes the watcher before its next probe (a new connection met a server that does not fit).
    suspect: Notify,
}

/// No host fitted within the start's wait.
#[derive(Debug, thiserror::Error)]
#[error("no host of DATABASE_URL {wanted}: {}", reasons.join("; "))]
pub struct NoHost {
    wanted: &'static str,
    reasons: Vec<String>,
}

impl Failover {
    /// Picks the first host that fits, trying every host again with backoff for a few seconds
    /// when none does.
    pub async fn start(candidates: Vec<Candidate>, target: Target) -> Result<Self, NoHost> {
        let deadline = Instant::now() + START_WAIT;
        let mut wait = RETRY_FIRST;
        loop {
            match first_fit(&candidates, target).await {
                Ok((index, _)) => {
                    tracing::info!(host = %candidates[index].label, hosts = candidates.len(), "database host chosen");
                    return Ok(Self(Arc::new(Inner {
                        candidates,
                        target,
                        current: AtomicUsize::new(index),
                        pools: Mutex::new(Vec::new()),
                        moved_at: Mutex::new(None),
                        sessions: Mutex::new(Vec::new()),
                        suspect: Notify::new(),
                    })));
                }
                Err(reasons) if Instant::now() + wait > deadline => {
                    return Err(NoHost { wanted: wanted(target), reasons });
                }
                Err(_) => tokio::time::sleep(wait).await,
            }
            wait = (wait * 2).min(RETRY_LONGEST);
        }
    }

    /// A pool on the current host that follows every move.
    pub fn pool(&self, application_name: &str, max_connections: u32, acquire_timeout: Duration) -> PgPool {
        let options = self.current_options(Some(application_name));
        let pool = self.pool_options(max_connections).acquire_timeout(acquire_timeout).connect_lazy_with(options);
        self.0.pools.lock().expect("pools lock").push(pool.clone());
        pool
    }

    /// Makes a pool built from one of [`Failover::pool`]'s (its options cloned, as
    /// `database::companion` does) follow the moves too.
    pub fn adopt(&self, pool: &PgPool) {
        let mut pools = self.0.pools.lock().expect("pools lock");
        pool.set_connect_options(self.current_options(pool.connect_options().get_application_name()));
        pools.push(pool.clone());
    }

    /// The watcher: probes the current host every half second and moves the pools when it no
    /// longer fits. Runs until `shutdown`.
    pub async fn follow(self, shutdown: CancellationToken) {
        let mut session: Option<PgConnection> = None;
        let mut forgotten_at = Instant::now();
        loop {
            if !self.current_fits(&mut session).await {
                let (index, kept) = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    chosen = self.choose_again() => chosen,
                };
                if let Some(left) = self.move_to(index) {
                    self.end_sessions_on(left).await;
                }
                session = Some(kept);
            } else if forgotten_at.elapsed() >= FORGET_ENDED_EVERY
                && let Some(connection) = session.as_mut()
            {
                self.forget_ended_sessions(connection).await;
                forgotten_at = Instant::now();
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.0.suspect.notified() => {}
                _ = tokio::time::sleep(PROBE_EVERY) => {}
            }
        }
    }

    /// Options of the current host, under the pool's application name.
    fn current_options(&self, application_name: Option<&str>) -> PgConnectOptions {
        let options = self.0.candidates[self.0.current.load(Ordering::Acquire)].options.clone();
        match application_name {
            Some(name) => options.application_name(name),
            None => options,
        }
    }

    fn pool_options(&self, max_connections: u32) -> PgPoolOptions {
        let inner = Arc::downgrade(&self.0);
        let options = super::pool_options(max_connections).before_acquire(move |_, meta| {
            let fresh = inner.upgrade().is_none_or(|inner| inner.opened_since_move(meta.age));
            Box::pin(async move { Ok(fresh) })
        });
        if self.0.target == Target::Any {
            return options;
        }
        let inner = Arc::downgrade(&self.0);
        options.after_connect(move |connection, _| {
            let inner = inner.clone();
            Box::pin(async move {
                match inner.upgrade() {
                    Some(inner) => inner.admit(connection).await,
                    None => Ok(()),
                }
            })
        })
    }

    /// Whether the current host answers and fits, over the watcher's own session.
    async fn current_fits(&self, session: &mut Option<PgConnection>) -> bool {
        let candidate = &self.0.candidates[self.0.current.load(Ordering::Acquire)];
        let asked = match session {
            Some(connection) => within_probe_timeout(super::store::server_role(connection)).await.map(|(role, _)| role),
            None => probe(&candidate.options).await.map(|(connection, role)| {
                *session = Some(connection);
                role
            }),
        };
        match asked {
            Ok(role) if self.0.target.accepts(role) => true,
            Ok(role) => {
                tracing::warn!(host = %candidate.label, reason = describe(role), "database host no longer fits");
                false
            }
            Err(error) => {
                tracing::warn!(host = %candidate.label, %error, "database host unreachable");
                false
            }
        }
    }

    /// Rounds over every host, in order, with backoff, until one fits.
    async fn choose_again(&self) -> (usize, PgConnection) {
        let mut wait = RETRY_FIRST;
        loop {
            match first_fit(&self.0.candidates, self.0.target).await {
                Ok(chosen) => return chosen,
                Err(reasons) => {
                    tracing::warn!(reasons = %reasons.join("; "), retry_in = ?wait, "no database host {}", wanted(self.0.target));
                }
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(RETRY_LONGEST);
        }
    }

    /// Hands every pool the chosen host's options; connections to the previous host close when
    /// next acquired. Returns the host left, if the pools moved.
    fn move_to(&self, index: usize) -> Option<usize> {
        let previous = self.0.current.swap(index, Ordering::AcqRel);
        if previous == index {
            tracing::info!(host = %self.0.candidates[index].label, "database host usable again");
            return None;
        }
        *self.0.moved_at.lock().expect("moved_at lock") = Some(Instant::now());
        for pool in self.0.pools.lock().expect("pools lock").iter() {
            pool.set_connect_options(self.current_options(pool.connect_options().get_application_name()));
        }
        tracing::warn!(
            from = %self.0.candidates[previous].label,
            to = %self.0.candidates[index].label,
            "database failover: the pools moved to another host"
        );
        Some(previous)
    }

    /// Ends the pools' sessions on a host they left, if it still answers: idle connections and
    /// listeners would otherwise stay on a server that no longer fits (they reconnect here).
    async fn end_sessions_on(&self, left: usize) {
        let pids: Vec<i32> = {
            let mut sessions = self.0.sessions.lock().expect("sessions lock");
            let (on_left, others) = sessions.drain(..).partition(|session: &Session| session.host == left);
            *sessions = others;
            on_left.into_iter().map(|session| session.backend_pid).collect()
        };
        if pids.is_empty() {
            return;
        }
        let candidate = &self.0.candidates[left];
        let ended = match probe(&candidate.options).await {
            Ok((mut connection, _)) => within_probe_timeout(super::store::end_sessions(&mut connection, &pids)).await,
            Err(error) => Err(error),
        };
        match ended {
            Ok(ended) => tracing::info!(host = %candidate.label, ended, "ended the pools' sessions on the host left"),
            // A host that does not answer holds no usable session of ours either.
            Err(error) => tracing::debug!(host = %candidate.label, %error, "the host left does not answer"),
        }
    }

    /// Drops the record of sessions that ended on the current host, so the record stays the
    /// size of the pools.
    async fn forget_ended_sessions(&self, connection: &mut PgConnection) {
        let current = self.0.current.load(Ordering::Acquire);
        let pids: Vec<i32> = self.recorded_on(current);
        let Ok(Ok(live)) = tokio::time::timeout(PROBE_TIMEOUT, super::store::live_sessions(connection, &pids)).await
        else {
            return;
        };
        let ended: Vec<i32> = pids.into_iter().filter(|pid| !live.contains(pid)).collect();
        self.0
            .sessions
            .lock()
            .expect("sessions lock")
            .retain(|session| session.host != current || !ended.contains(&session.backend_pid));
    }

    fn recorded_on(&self, host: usize) -> Vec<i32> {
        let sessions = self.0.sessions.lock().expect("sessions lock");
        sessions.iter().filter(|session| session.host == host).map(|session| session.backend_pid).collect()
    }
}

/// A session of a pool: the host it was opened on and its backend process there.
#[derive(Debug, Clone, Copy)]
struct Session {
    host: usize,
    backend_pid: i32,
}

impl Inner {
    /// Whether a connection `age` old was opened after the pools last moved.
    fn opened_since_move(&self, age: Duration) -> bool {
        let moved_at = *self.moved_at.lock().expect("moved_at lock");
        moved_at.is_none_or(|moved_at| Instant::now().checked_sub(age).is_some_and(|opened| opened >= moved_at))
    }

    /// Refuses a new connection to a server that does not fit (the pool tries again, by then
    /// perhaps on another host) and wakes the watcher.
    async fn admit(&self, connection: &mut PgConnection) -> Result<(), sqlx::Error> {
        let (role, backend_pid) = super::store::server_role(&mut *connection).await?;
        if self.target.accepts(role) {
            let host = self.current.load(Ordering::Acquire);
            self.sessions.lock().expect("sessions lock").push(Session { host, backend_pid });
            return Ok(());
        }
        self.suspect.notify_one();
        Err(sqlx::Error::Configuration(
            format!("the database server is {}; waiting for another host", describe(role)).into(),
        ))
    }
}

/// The first host that fits, with a session to it; otherwise why each did not.
async fn first_fit(candidates: &[Candidate], target: Target) -> Result<(usize, PgConnection), Vec<String>> {
    let mut reasons = Vec::with_capacity(candidates.len());
    for (index, candidate) in candidates.iter().enumerate() {
        match probe(&candidate.options).await {
            Ok((connection, role)) if target.accepts(role) => return Ok((index, connection)),
            Ok((_, role)) => reasons.push(format!("{}: {}", candidate.label, describe(role))),
            Err(error) => reasons.push(format!("{}: {error}", candidate.label)),
        }
    }
    Err(reasons)
}

/// Connects to one host and asks what it is.
async fn probe(options: &PgConnectOptions) -> Result<(PgConnection, ServerRole), sqlx::Error> {
    let options = options.clone().application_name(PROBE_APPLICATION);
    within_probe_timeout(async move {
        let mut connection = options.connect().await?;
        let (role, _) = super::store::server_role(&mut connection).await?;
        Ok((connection, role))
    })
    .await
}

async fn within_probe_timeout<T>(
    asked: impl std::future::Future<Output = Result<T, sqlx::Error>>,
) -> Result<T, sqlx::Error> {
    match tokio::time::timeout(PROBE_TIMEOUT, asked).await {
        Ok(result) => result,
        Err(_) => Err(sqlx::Error::Io(std::io::ErrorKind::TimedOut.into())),
    }
}

fn describe(role: ServerRole) -> &'static str {
    match role {
        ServerRole { in_recovery: true, .. } => "a standby",
        ServerRole { read_only: true, .. } => "read-only",
        ServerRole { .. } => "a primary",
    }
}

fn wanted(target: Target) -> &'static str {
    match target {
        Target::Any => "answers",
        Target::ReadWrite => "accepts writes (target_session_attrs=read-write)",
        Target::Primary => "is a primary (target_session_attrs=primary)",
    }
}
