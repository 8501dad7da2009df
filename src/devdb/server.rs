//! One PostgreSQL server process under its `sh` supervisor, and the task that keeps it running:
//! it notices the server died, restarts it on the same port (PostgreSQL runs crash recovery by
//! itself) with backoff, and stops it when asked.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use sqlx::{Connection, PgConnection};
use tokio::process::{Child, ChildStdin};
use tokio_util::sync::CancellationToken;

use super::lockfile::{self, Holder};
use super::{DevDbError, Durability, ServerUser, ensure_database};

/// Everything needed to start the server again the same way.
#[derive(Debug, Clone)]
pub(super) struct ServerSpec {
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    pub log_path: PathBuf,
    pub port: u16,
    pub owner: ServerUser,
    pub durability: Durability,
    /// The maintenance database's URL (carries the password; never logged).
    pub maintenance_url: String,
}

/// A started server: its supervisor, and the pipe whose closing stops it.
#[derive(Debug)]
pub(super) struct Running {
    supervisor: Child,
    lifeline: ChildStdin,
}

/// Longest a first start waits for PostgreSQL to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a start waits for a server still running on the same directory (a killed
/// feedwatch's cluster shutting down) before saying who holds it.
const HOLDER_TIMEOUT: Duration = Duration::from_secs(60);
/// Restart delays after a crash: the first is short because the dead server's backends leave
/// within moments, later ones grow so a server that cannot start does not spin.
const FIRST_RESTART_DELAY: Duration = Duration::from_millis(100);
const LONGEST_RESTART_DELAY: Duration = Duration::from_secs(5);
/// A server that ran this long is considered recovered: the next crash restarts it quickly again.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Log lines quoted when a start fails or the server dies.
const LOG_LINES_QUOTED: usize = 12;

impl ServerSpec {
    /// Waits for the directory to be free, starts the server and waits until it accepts
    /// connections; gives up early when `cancel` fires.
    pub async fn launch(&self, cancel: &CancellationToken) -> Result<Running, DevDbError> {
        self.wait_for_directory(cancel).await?;
        let log_start = log_len(&self.log_path);
        let mut running = self.spawn()?;
        match self.wait_until_ready(&mut running, cancel).await {
            Ok(()) => Ok(running),
            Err(error) => {
                running.stop().await;
                Err(error.with_log(&self.log_path, log_start))
            }
        }
    }

    async fn wait_for_directory(&self, cancel: &CancellationToken) -> Result<(), DevDbError> {
        let started = Instant::now();
        let mut announced = false;
        loop {
            match lockfile::holder(&self.data_dir) {
                Holder::Free => return Ok(()),
                Holder::Stale => {
                    tracing::warn!(dir = %self.data_dir.display(), "removing the lock file of a PostgreSQL that is gone");
                    return lockfile::remove_stale(&self.data_dir)
                        .map_err(|source| DevDbError::Io { path: self.data_dir.join("postmaster.pid"), source });
                }
                Holder::Busy(pid) if started.elapsed() >= HOLDER_TIMEOUT => {
                    return Err(DevDbError::DirectoryBusy { pid, dir: self.data_dir.clone(), waited: HOLDER_TIMEOUT });
                }
                Holder::Busy(pid) => {
                    if !announced {
                        tracing::info!(pid, dir = %self.data_dir.display(), "waiting for the PostgreSQL still running on the data directory to stop");
                        announced = true;
                    }
                    tokio::select! {
                        () = cancel.cancelled() => return Err(DevDbError::Cancelled),
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
    }

    fn spawn(&self) -> Result<Running, DevDbError> {
        let io = |source| DevDbError::Io { path: self.log_path.clone(), source };
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log_path).map_err(io)?;
        let throwaway = self.durability == Durability::Throwaway;
        let mut command = self.owner.command(Path::new("/bin/sh"));
        command
            .args(["-c", SUPERVISOR, "feedwatch-postgres"])
            .arg(&self.bin)
            .arg(&self.data_dir)
            .arg(self.port.to_string())
            .arg(if throwaway { "yes" } else { "no" });
        if throwaway {
            command.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
        }
        command
            .args(["-c", "max_connections=300"])
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(io)?)
            .stderr(log)
            .kill_on_drop(false);
        let mut supervisor = command
            .spawn()
            .map_err(|error| DevDbError::Command { action: "starting postgres".into(), detail: error.to_string() })?;
        let lifeline = supervisor.stdin.take().ok_or_else(|| DevDbError::Command {
            action: "starting postgres".into(),
            detail: "no stdin pipe".into(),
        })?;
        Ok(Running { supervisor, lifeline })
    }

    async fn wait_until_ready(&self, running: &mut Running, cancel: &CancellationToken) -> Result<(), DevDbError> {
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = running.supervisor.try_wait() {
                return Err(DevDbError::ExitedEarly { log: self.log_path.clone(), tail: String::new() });
            }
            match PgConnection::connect(&self.maintenance_url).await {
                Ok(mut conn) => return ensure_database(&mut conn).await,
                Err(_) if started.elapsed() < READY_TIMEOUT => {
                    // Start-up takes about a second; a short poll keeps `serve` snappy.
                    tokio::select! {
                        () = cancel.cancelled() => return Err(DevDbError::Cancelled),
                        () = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                Err(_) => {
                    return Err(DevDbError::NotReady {
                        waited: READY_TIMEOUT,
                        log: self.log_path.clone(),
                        tail: String::new(),
                    });
                }
            }
        }
    }
}

impl Running {
    /// Closes the lifeline (the supervisor asks PostgreSQL for a fast shutdown) and waits.
    pub async fn stop(self) {
        let Self { mut supervisor, lifeline } = self;
        drop(lifeline);
        if let Err(error) = supervisor.wait().await {
            tracing::warn!(%error, "waiting for PostgreSQL to stop failed");
        }
    }
}

/// Keeps the server running until `stop` fires, then stops it.
pub(super) async fn supervise(spec: ServerSpec, mut running: Running, stop: CancellationToken) {
    let mut delay = FIRST_RESTART_DELAY;
    loop {
        let up_since = Instant::now();
        let log_start = log_len(&spec.log_path);
        tokio::select! {
            () = stop.cancelled() => return running.stop().await,
            status = running.supervisor.wait() => {
                let status = status.map(|status| status.to_string()).unwrap_or_else(|error| error.to_string());
                tracing::error!(
                    %status,
                    log = %log_tail(&spec.log_path, log_start),
                    "the private PostgreSQL stopped unexpectedly; restarting it"
                );
            }
        }
        if up_since.elapsed() >= STABLE_AFTER {
            delay = FIRST_RESTART_DELAY;
        }
        running = loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(LONGEST_RESTART_DELAY);
            match spec.launch(&stop).await {
                Ok(running) => {
                    tracing::info!(port = spec.port, "the private PostgreSQL is running again");
                    break running;
                }
                Err(DevDbError::Cancelled) => return,
                Err(error) => tracing::warn!(%error, retry_in = ?delay, "restarting the private PostgreSQL failed"),
            }
        };
    }
}

/// The supervisor. PostgreSQL and a reader of the supervisor's own input run beside it; the
/// reader asks for a fast shutdown when the input closes (feedwatch stopped or died, even by
/// SIGKILL). Whichever ends first, the supervisor reaps the postmaster, so a crashed server
/// never lingers as a zombie holding its lock file, and exits with the postmaster's status,
/// which feedwatch, unless it asked for the stop, answers with a restart. A throwaway directory
/// is removed only after a clean shutdown: a crashed one may still be restarted.
const SUPERVISOR: &str = r#"
bin="$1"; data="$2"; port="$3"; cleanup="$4"; shift 4
exec 3<&0
"$bin/postgres" -D "$data" -p "$port" -c listen_addresses=127.0.0.1 -c unix_socket_directories= "$@" </dev/null 3<&- &
pg=$!
( read -r _ignored; kill -INT "$pg" 2>/dev/null ) <&3 &
reader=$!
exec 3<&-
trap 'kill -INT $pg 2>/dev/null' TERM INT
status=1
while kill -0 "$pg" 2>/dev/null; do wait "$pg"; status=$?; done
kill "$reader" 2>/dev/null
if [ "$status" -eq 0 ] && [ "$cleanup" = yes ]; then
  rm -rf "$data" "$data.password" "$data.log"
  rmdir "$(dirname "$data")" 2>/dev/null
fi
exit "$status"
"#;

fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|meta| meta.len()).unwrap_or(0)
}

/// The last lines the server logged since `from` (a byte offset), joined by ` | `.
pub(super) fn log_tail(path: &Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|meta| meta.len()).unwrap_or(0);
    let start = from.max(len.saturating_sub(8 * 1024)).min(len);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(LOG_LINES_QUOTED)..].join(" | ")
}
