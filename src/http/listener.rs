//! Connection-level limits, below the router: how long a request head may take to arrive, how
//! long a connection may sit idle between requests, and how many connections are served at
//! once. `axum::serve` has none of them (hyper's header timer needs a timer it does not give),
//! so this accept loop drives hyper itself.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::problem::{ApiError, PROBLEM_JSON};

/// Limits of each connection and of the number of them.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Longest wait for a whole request head, from the moment the server waits for it (the
    /// accept, or the end of the previous response on a kept-alive connection).
    pub header_read_timeout: Duration,
    /// A connection with no request in progress for this long is closed.
    pub keep_alive_timeout: Duration,
    /// Connections served at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            keep_alive_timeout: Duration::from_secs(5),
            max_connections: 512,
        }
    }
}

/// How long a refused connection may take to send its request head and receive its 503.
const REFUSAL_LIMIT: Duration = Duration::from_secs(1);

/// Serves `router` until `shutdown`; then stops accepting, asks every connection to finish its
/// current request and close, and returns once all have.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    limits: ConnectionLimits,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let connections = TaskTracker::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(limits.keep_alive_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors, or a connection reset before it was accepted: the
                    // listener itself is fine; pause so a descriptor shortage does not spin.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => {
                let (builder, router, shutdown) = (builder.clone(), router.clone(), shutdown.clone());
                connections.spawn(serve_one(
                    builder,
                    (stream, peer),
                    router,
                    shutdown,
                    limits.keep_alive_timeout,
                    slot,
                ));
            }
            Err(_) => {
                tracing::warn!(limit = limits.max_connections, "connection limit reached; refusing a connection");
                tokio::spawn(refuse(stream));
            }
        }
    }
    connections.close();
    connections.wait().await;
    Ok(())
}

/// When the connection last finished a request, and how many it is running.
#[derive(Debug)]
struct Activity {
    in_flight: usize,
    since: Instant,
}

/// Marks one request in progress for as long as it lives.
struct Busy(Arc<Mutex<Activity>>);

impl Busy {
    fn begin(activity: &Arc<Mutex<Activity>>) -> Self {
        lock(activity).in_flight += 1;
        Self(Arc::clone(activity))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let mut activity = lock(&self.0);
        activity.in_flight -= 1;
        activity.since = Instant::now();
    }
}

fn lock(activity: &Mutex<Activity>) -> std::sync::MutexGuard<'_, Activity> {
    activity.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn serve_one(
    builder: auto::Builder<TokioExecutor>,
    (stream, peer): (TcpStream, SocketAddr),
    router: Router,
    shutdown: CancellationToken,
    keep_alive: Duration,
    _slot: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Mutex::new(Activity { in_flight: 0, since: Instant::now() }));
    let tracked = Arc::clone(&activity);
    let service = tower::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
        let (router, busy) = (router.clone(), Busy::begin(&tracked));
        async move {
            // The peer's address, as axum's connect-info would give it: the failed-authentication
            // throttle counts per client address.
            let mut request = request.map(axum::body::Body::new);
            request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
            let response = router.oneshot(request).await;
            drop(busy);
            response
        }
    });
    let connection = builder
        .serve_connection_with_upgrades(TokioIo::new(stream), hyper_util::service::TowerToHyperService::new(service));
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        let idle_until = {
            let activity = lock(&activity);
            if activity.in_flight > 0 { Instant::now() + keep_alive } else { activity.since + keep_alive }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            () = shutdown.cancelled(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(idle_until), if !closing => {
                let activity = lock(&activity);
                if activity.in_flight == 0 && activity.since.elapsed() >= keep_alive {
                    drop(activity);
                    // Closes at once when no request is in progress.
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// The bytes a refused connection receives: a complete HTTP/1.1 503 problem that says to come
/// back in a second, then the close.
fn refusal() -> Vec<u8> {
    let body = ApiError::unavailable(
        "too_many_connections",
        "The server is serving as many connections as it allows; retry shortly.",
        1,
    )
    .body();
    // Every problem names its request, so a refusal can be found in the logs like any other.
    let request_id = uuid::Uuid::new_v4().to_string();
    let body = match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(serde_json::Value::Object(mut fields)) => {
            fields.insert("request_id".into(), request_id.clone().into());
            serde_json::to_vec(&fields).unwrap_or(body)
        }
        _ => body,
    };
    let status = StatusCode::SERVICE_UNAVAILABLE;
    let mut bytes = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {PROBLEM_JSON}\r\nretry-after: 1\r\nconnection: close\r\n{}: {request_id}\r\ncontent-length: {}\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or_default(),
        super::middleware::REQUEST_ID,
        body.len()
    )
    .into_bytes();
    bytes.extend(body);
    bytes
}

async fn refuse(mut stream: TcpStream) {
    let answered = tokio::time::timeout(REFUSAL_LIMIT, async {
        // A client that gets an answer before it has sent its request treats it as a broken
        // connection, not as this answer: let the request head arrive first.
        let mut head = Vec::new();
        let mut chunk = [0u8; 2048];
        while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 16 * 1024 {
            match stream.read(&mut chunk).await? {
                0 => break,
                read => head.extend_from_slice(&chunk[..read]),
            }
        }
        stream.write_all(&refusal()).await?;
        stream.shutdown().await
    })
    .await;
    if let Ok(Err(error)) = answered {
        tracing::debug!(%error, "answering a refused connection failed");
    }
}
