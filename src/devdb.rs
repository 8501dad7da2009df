//! A private PostgreSQL cluster, started from the installed server binaries when no
//! `DATABASE_URL` is given: `feedwatch serve` on a fresh machine, and the test suite.
//!
//! The server runs under a small `sh` supervisor whose standard input is a pipe from this
//! process. When this process exits for any reason, even SIGKILL, the pipe closes and the
//! supervisor shuts PostgreSQL down: a crashed feedwatch never leaves a stray server holding
//! the data directory. A task of this process watches the supervisor in turn: when PostgreSQL
//! dies, it is started again (`server.rs`), and `/readyz` recovers without anyone's help.

mod lockfile;
mod server;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::PgConnection;
use tokio::process::Command;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::database;
use server::ServerSpec;

/// How the cluster is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Data survives restarts and crashes (the service's own data).
    Durable,
    /// Throwaway test data: no fsync, and the whole directory is removed when the server stops.
    Throwaway,
}

#[derive(Debug, thiserror::Error)]
pub enum DevDbError {
    #[error(
        "no PostgreSQL server binaries found (looked for `initdb` and `postgres` on PATH and in \
         /usr/lib/postgresql/*/bin). Install them (Debian/Ubuntu: apt-get install postgresql) \
         or set DATABASE_URL to an existing database"
    )]
    BinariesNotFound,
    #[error(
        "running as root, and PostgreSQL refuses to run as root; no `postgres` user exists to \
         run it as. Create one (useradd postgres) or set DATABASE_URL"
    )]
    NoUnprivilegedUser,
    #[error(
        "the `postgres` user cannot reach {0}; choose a --data-dir it can traverse (e.g. under /var/tmp) or set DATABASE_URL"
    )]
    DataDirUnreachable(PathBuf),
    #[error("{action} failed: {detail}")]
    Command { action: String, detail: String },
    #[error("PostgreSQL did not become ready within {waited:?}; its log ({log}) ends: {tail}")]
    NotReady { waited: Duration, log: PathBuf, tail: String },
    #[error("PostgreSQL exited during start-up; its log ({log}) ends: {tail}")]
    ExitedEarly { log: PathBuf, tail: String },
    #[error(
        "another PostgreSQL (pid {pid}) still runs on {dir} after {waited:?}; stop it, or give this \
         instance its own --data-dir"
    )]
    DirectoryBusy { pid: u32, dir: PathBuf, waited: Duration },
    #[error("the start was cancelled")]
    Cancelled,
    #[error("i/o error on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("database error while preparing the cluster: {0}")]
    Database(#[from] sqlx::Error),
}

/// A running private cluster, kept running by a supervising task. Dropping it stops the server
/// (the task closes the supervisor's input); [`LocalPostgres::stop`] does the same and waits
/// for the shutdown to finish.
#[derive(Debug)]
pub struct LocalPostgres {
    url: String,
    port: u16,
    run_as_postgres: bool,
    stop: CancellationToken,
    supervision: Option<JoinHandle<()>>,
}

/// The database feedwatch uses inside its private cluster.
const DATABASE: &str = "feedwatch";

impl LocalPostgres {
    /// Initialises the cluster at `data_dir` if needed, starts it on a free loopback port and
    /// makes sure the `feedwatch` database exists.
    pub async fn start(data_dir: &Path, durability: Durability) -> Result<Self, DevDbError> {
        let bin = find_binaries().ok_or(DevDbError::BinariesNotFound)?;
        let owner = ServerUser::detect().await?;
        let data_dir = usable_data_dir(&absolute(data_dir)?, &owner, durability).await?;
        let password_path = data_dir.with_extension("password");
        let log_path = data_dir.with_extension("log");
        if !data_dir.join("PG_VERSION").exists() {
            if owner.is_postgres() {
                tracing::info!(dir = %data_dir.display(), "running as root: initialising PostgreSQL as the `postgres` user");
            }
            init_cluster(&bin, &data_dir, &password_path, &owner, durability).await?;
        }
        let password = read_to_string(&password_path)?;
        let password = password.trim();
        let port = free_port()?;
        let run_as_postgres = owner.is_postgres();
        let spec = ServerSpec {
            bin,
            data_dir,
            log_path,
            port,
            owner,
            durability,
            maintenance_url: format!("postgres://postgres:{password}@127.0.0.1:{port}/postgres"),
        };
        let stop = CancellationToken::new();
        let running = spec.launch(&stop).await?;
        let supervision = tokio::spawn(server::supervise(spec, running, stop.clone()));
        Ok(Self {
            url: format!("postgres://postgres:{password}@127.0.0.1:{port}/{DATABASE}"),
            port,
            run_as_postgres,
            stop,
            supervision: Some(supervision),
        })
    }

    /// A URL for the `feedwatch` database. It carries the cluster's generated password, so it
    /// is never logged.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether the server runs as the `postgres` user because this process is root.
    pub fn runs_as_postgres_user(&self) -> bool {
        self.run_as_postgres
    }

    /// Stops the server (fast shutdown: open sessions are ended) and waits for it to exit; at
    /// once when it is already gone.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(supervision) = self.supervision.take()
            && let Err(error) = supervision.await
        {
            tracing::warn!(%error, "the private PostgreSQL's supervising task failed");
        }
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl DevDbError {
    /// The same error with the server log's last lines since `from` (a byte offset), so a
    /// failed start says why without a trip to the log file.
    fn with_log(self, log_path: &Path, from: u64) -> Self {
        match self {
            Self::ExitedEarly { log, .. } => Self::ExitedEarly { tail: server::log_tail(log_path, from), log },
            Self::NotReady { waited, log, .. } => {
                Self::NotReady { waited, tail: server::log_tail(log_path, from), log }
            }
            other => other,
        }
    }
}

async fn ensure_database(conn: &mut PgConnection) -> Result<(), DevDbError> {
    if !database::store::database_exists(&mut *conn, DATABASE).await? {
        database::store::create_database(&mut *conn, DATABASE).await?;
    }
    Ok(())
}

/// The directory holding `initdb` and `postgres`: PATH first, then Debian's versioned
/// directories, newest version first.
fn find_binaries() -> Option<PathBuf> {
    let on_path =
        std::env::var_os("PATH").into_iter().flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>());
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    debian.sort_by_key(|dir| std::cmp::Reverse(version_of(dir)));
    on_path.chain(debian).find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
}

fn version_of(bin_dir: &Path) -> u32 {
    bin_dir
        .parent()
        .and_then(|dir| dir.file_name())
        .and_then(|name| name.to_str())
        .and_then(|name| name.split('.').next())
        .and_then(|major| major.parse().ok())
        .unwrap_or(0)
}

/// Who runs the server: this process's user, or `postgres` when this process is root.
#[derive(Debug, Clone)]
struct ServerUser {
    /// uid and gid of the `postgres` user when we must switch to it.
    switch_to: Option<(u32, u32)>,
}

impl ServerUser {
    async fn detect() -> Result<Self, DevDbError> {
        if run_id(&["-u"]).await? != 0 {
            return Ok(Self { switch_to: None });
        }
        let uid = run_id(&["-u", "postgres"]).await.map_err(|_| DevDbError::NoUnprivilegedUser)?;
        let gid = run_id(&["-g", "postgres"]).await.map_err(|_| DevDbError::NoUnprivilegedUser)?;
        Ok(Self { switch_to: Some((uid, gid)) })
    }

    fn is_postgres(&self) -> bool {
        self.switch_to.is_some()
    }

    /// A command that runs `program` as the server user.
    fn command(&self, program: &Path) -> Command {
        match self.switch_to {
            None => Command::new(program),
            Some(_) => {
                let mut command = Command::new("setpriv");
                command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
                command
            }
        }
    }
}

async fn run_id(args: &[&str]) -> Result<u32, DevDbError> {
    let output = Command::new("id")
        .args(args)
        .output()
        .await
        .map_err(|error| DevDbError::Command { action: "id".into(), detail: error.to_string() })?;
    String::from_utf8_lossy(&output.stdout).trim().parse().map_err(|_| DevDbError::Command {
        action: format!("id {}", args.join(" ")),
        detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
    })
}

fn absolute(path: &Path) -> Result<PathBuf, DevDbError> {
    std::path::absolute(path).map_err(|source| DevDbError::Io { path: path.to_owned(), source })
}

fn read_to_string(path: &Path) -> Result<String, DevDbError> {
    std::fs::read_to_string(path).map_err(|source| DevDbError::Io { path: path.to_owned(), source })
}

/// The requested data directory, or, when we run PostgreSQL as `postgres` and that user cannot
/// reach it (a checkout under root's 0700 home, say), a stable directory under /var/tmp named
/// after the requested path, so the same checkout finds its data again next time.
async fn usable_data_dir(requested: &Path, owner: &ServerUser, durability: Durability) -> Result<PathBuf, DevDbError> {
    match prepare_directory(requested, owner, durability).await {
        Err(DevDbError::DataDirUnreachable(_)) => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(requested.as_os_str().as_encoded_bytes());
            let fallback = PathBuf::from(format!("/var/tmp/feedwatch-{}", &hex::encode(digest)[..16])).join("postgres");
            tracing::warn!(
                requested = %requested.display(),
                using = %fallback.display(),
                "the postgres user cannot reach the data directory; using another"
            );
            prepare_directory(&fallback, owner, durability).await?;
            Ok(fallback)
        }
        result => result.map(|()| requested.to_owned()),
    }
}

/// Creates the parent of the data directory and, when the server runs as `postgres`, hands the
/// data directory to that user and checks it can reach it.
async fn prepare_directory(data_dir: &Path, owner: &ServerUser, durability: Durability) -> Result<(), DevDbError> {
    let io = |source| DevDbError::Io { path: data_dir.to_owned(), source };
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let Some((uid, gid)) = owner.switch_to else {
        return Ok(());
    };
    std::os::unix::fs::chown(data_dir, Some(uid), Some(gid)).map_err(io)?;
    if durability == Durability::Throwaway {
        // The supervisor removes the whole throwaway directory, files beside the data included.
        if let Some(parent) = data_dir.parent() {
            std::os::unix::fs::chown(parent, Some(uid), Some(gid)).map_err(io)?;
        }
    }
    let reachable = owner
        .command(Path::new("test"))
        .args(["-w".as_ref(), data_dir.as_os_str()])
        .status()
        .await
        .map(|status| status.success())
        .unwrap_or(false);
    if reachable { Ok(()) } else { Err(DevDbError::DataDirUnreachable(data_dir.to_owned())) }
}

async fn init_cluster(
    bin: &Path,
    data_dir: &Path,
    password_path: &Path,
    owner: &ServerUser,
    durability: Durability,
) -> Result<(), DevDbError> {
    let password = hex::encode(rand::random::<[u8; 16]>());
    let pwfile = data_dir.with_extension("initpw");
    write_private(&pwfile, &password, owner)?;
    let mut command = owner.command(&bin.join("initdb"));
    command
        .arg("-D")
        .arg(data_dir)
        .args(["-U", "postgres", "-A", "scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8"])
        .arg(format!("--pwfile={}", pwfile.display()));
    if durability == Durability::Throwaway {
        command.arg("--no-sync");
    }
    let output = command.output().await;
    let _ = std::fs::remove_file(&pwfile);
    let output = output.map_err(|error| DevDbError::Command { action: "initdb".into(), detail: error.to_string() })?;
    if !output.status.success() {
        return Err(DevDbError::Command {
            action: "initdb".into(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    write_private(password_path, &password, &ServerUser { switch_to: None })
}

/// Writes a secret readable only by its owner (and by `postgres` when it must read it).
fn write_private(path: &Path, contents: &str, reader: &ServerUser) -> Result<(), DevDbError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let io = |source| DevDbError::Io { path: path.to_owned(), source };
    let mut file =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path).map_err(io)?;
    std::io::Write::write_all(&mut file, contents.as_bytes()).map_err(io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    if let Some((uid, gid)) = reader.switch_to {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).map_err(io)?;
    }
    Ok(())
}

fn free_port() -> Result<u16, DevDbError> {
    let io = |source| DevDbError::Io { path: PathBuf::from("127.0.0.1:0"), source };
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io)?;
    Ok(listener.local_addr().map_err(io)?.port())
}
