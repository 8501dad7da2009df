//! PostgreSQL failover: a primary and a synchronous streaming standby started here, a real
//! `feedwatch serve` on a multi-host DATABASE_URL, and the primary stopped (immediate mode, as a
//! crash) and the standby promoted while clients write.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::{Connection, PgConnection};
use tokio::process::Command;

use crate::operations::{start_serve, terminate};
use crate::reliability::within;

/// The standby's name in `synchronous_standby_names`, given to it as its `cluster_name`.
const STANDBY_NAME: &str = "feedwatch_standby";

/// PostgreSQL's programs: PATH first, then Debian's versioned directories, newest first.
fn bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH").map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>());
    let mut debian: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .collect();
    debian
        .sort_by_key(|dir| std::cmp::Reverse(dir.parent().and_then(|dir| dir.file_name()).map(|name| name.to_owned())));
    on_path
        .into_iter()
        .flatten()
        .chain(debian)
        .find(|dir| ["initdb", "pg_ctl", "pg_basebackup"].iter().all(|program| dir.join(program).is_file()))
        .expect("PostgreSQL's programs (pg_ctl, pg_basebackup)")
}

/// Two clusters under one directory, run as `postgres` when the tests run as root; stopped and
/// removed when dropped, so a failed test leaves nothing running.
struct Pair {
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    primary_port: u16,
    standby_port: u16,
}

impl Pair {
    fn primary(&self) -> PathBuf {
        self.dir.join("primary")
    }

    fn standby(&self) -> PathBuf {
        self.dir.join("standby")
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        if self.as_postgres {
            let mut command = Command::new("setpriv");
            command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    async fn run(&self, program: &str, args: &[&str]) {
        let output = self.command(program).args(args).output().await.unwrap();
        assert!(output.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    }

    async fn pg_ctl(&self, data: &Path, args: &[&str]) {
        let log = data.with_extension("log");
        let mut all = vec!["-D", data.to_str().unwrap(), "-l", log.to_str().unwrap(), "-w"];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all).await;
    }

    fn url(&self, port: u16, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/{database}")
    }

    /// A primary whose commits wait for the standby's flush, and that standby, streaming.
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("feedwatch-failover-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let as_postgres = Command::new("id").arg("-u").output().await.unwrap().stdout.trim_ascii() == b"0";
        let pair = Self { dir, bin: bin_dir(), as_postgres, primary_port: free_port(), standby_port: free_port() };
        if as_postgres {
            let uid = Command::new("id").args(["-u", "postgres"]).output().await.unwrap().stdout;
            let gid = Command::new("id").args(["-g", "postgres"]).output().await.unwrap().stdout;
            let (uid, gid) = (number(&uid), number(&gid));
            std::os::unix::fs::chown(&pair.dir, Some(uid), Some(gid)).unwrap();
        }
        let primary = pair.primary();
        pair.run(
            "initdb",
            &[
                "-D",
                primary.to_str().unwrap(),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        )
        .await;
        append(
            &primary.join("postgresql.conf"),
            &format!(
                "listen_addresses = '127.0.0.1'\nport = {}\nunix_socket_directories = '{}'\nwal_level = replica\n\
                 max_wal_senders = 4\nsynchronous_standby_names = '{STANDBY_NAME}'\nmax_connections = 60\n",
                pair.primary_port,
                pair.dir.display()
            ),
        );
        pair.pg_ctl(&primary, &["start"]).await;
        let standby = pair.standby();
        let port = pair.primary_port.to_string();
        pair.run(
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", standby.to_str().unwrap()]
                .into_iter()
                .chain(["-R", "-X", "stream", "--checkpoint=fast", "--no-sync"])
                .collect::<Vec<_>>(),
        )
        .await;
        // Once promoted it has no standby of its own: it must not wait for one to commit.
        append(
            &standby.join("postgresql.conf"),
            &format!("port = {}\ncluster_name = '{STANDBY_NAME}'\nsynchronous_standby_names = ''\n", pair.standby_port),
        );
        pair.pg_ctl(&standby, &["start"]).await;
        let mut admin = PgConnection::connect(&pair.url(pair.primary_port, "postgres")).await.unwrap();
        let started = Instant::now();
        while !replicates_synchronously(&mut admin).await {
            assert!(started.elapsed() < Duration::from_secs(15), "the standby does not replicate synchronously");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        sqlx::Executor::execute(&mut admin, "create database feedwatch").await.unwrap();
        pair
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for data in [self.primary(), self.standby()] {
            let program = self.bin.join("pg_ctl");
            let mut command = if self.as_postgres {
                let mut command = std::process::Command::new("setpriv");
                command.args(["--reuid=postgres", "--regid=postgres", "--init-groups", "--"]).arg(program);
                command
            } else {
                std::process::Command::new(program)
            };
            let _ = command.arg("-D").arg(&data).args(["-m", "immediate", "-w", "stop"]).output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn replicates_synchronously(admin: &mut PgConnection) -> bool {
    let sync: Option<String> =
        sqlx::query_scalar("select sync_state from pg_stat_replication where application_name = $1")
            .bind(STANDBY_NAME)
            .fetch_optional(admin)
            .await
            .unwrap();
    sync.as_deref() == Some("sync")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn number(output: &[u8]) -> u32 {
    std::str::from_utf8(output).unwrap().trim().parse().unwrap()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new().append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

/// Refusals seen by the writers: status, whether it said when to retry, whether it is a problem.
type Refusals = Arc<Mutex<Vec<(u16, bool, bool)>>>;

/// `feedwatch serve` (a real process, two refresh slots) on both servers, the primary first.
fn serve_on(pair: &Pair) -> (crate::operations::Process, String, String) {
    let url = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/feedwatch?target_session_attrs=read-write",
        pair.primary_port, pair.standby_port
    );
    let keys = secrecy::ExposeSecret::expose_secret(&feedwatch::connection::Sealer::generate_config("k1")).to_owned();
    let (serve, addr, lines) =
        start_serve(&[("DATABASE_URL", &url), ("FEEDWATCH_CREDENTIALS_KEYS", &keys)], &["--workers", "2"]);
    let key =
        lines.iter().find(|line| line.contains("first admin key")).unwrap().rsplit(' ').next().unwrap().to_owned();
    (serve, addr, key)
}

/// Four clients creating API keys until finished, recording each acknowledged id and each refusal.
struct Writes {
    acknowledged: Arc<Mutex<BTreeSet<String>>>,
    refusals: Refusals,
    stop: tokio_util::sync::CancellationToken,
    writers: Vec<tokio::task::JoinHandle<()>>,
}

impl Writes {
    fn start(addr: &str, key: &str) -> Self {
        let acknowledged = Arc::new(Mutex::new(BTreeSet::new()));
        let refusals: Refusals = Arc::default();
        let stop = tokio_util::sync::CancellationToken::new();
        let writers = (0..4)
            .map(|_| {
                let (acknowledged, refusals) = (Arc::clone(&acknowledged), Arc::clone(&refusals));
                tokio::spawn(write_until(addr.to_owned(), key.to_owned(), acknowledged, refusals, stop.clone()))
            })
            .collect();
        Self { acknowledged, refusals, stop, writers }
    }

    fn acknowledged(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }

    fn refused(&self) -> usize {
        self.refusals.lock().unwrap().len()
    }

    /// Stops the clients; every refusal must have been a 503 problem with Retry-After.
    async fn finish(self) -> BTreeSet<String> {
        self.stop.cancel();
        for writer in self.writers {
            writer.await.unwrap();
        }
        let refusals = self.refusals.lock().unwrap().clone();
        eprintln!("refusals meanwhile: {refusals:?}");
        for (status, retry_after, problem) in refusals {
            assert!(status == 503 && retry_after && problem, "a refusal during the failover: {status}");
        }
        self.acknowledged.lock().unwrap().clone()
    }
}

async fn write_until(
    addr: String,
    key: String,
    acknowledged: Arc<Mutex<BTreeSet<String>>>,
    refusals: Refusals,
    stop: tokio_util::sync::CancellationToken,
) {
    let client = reqwest::Client::new();
    while !stop.is_cancelled() {
        let response = client
            .post(format!("http://{addr}/v1/api-keys"))
            .bearer_auth(&key)
            .json(&json!({ "role": "helpdesk", "label": "failover writer" }))
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        let Ok(response) = response else { continue };
        let status = response.status().as_u16();
        if status == 201 {
            let body: Value = response.json().await.unwrap();
            acknowledged.lock().unwrap().insert(body["id"].as_str().unwrap().to_owned());
        } else {
            let retry_after = response.headers().contains_key("retry-after");
            let problem = response.headers()["content-type"] == "application/problem+json";
            refusals.lock().unwrap().push((status, retry_after, problem));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Every acknowledged write must be on `server`.
async fn assert_all_stored(server: &mut PgConnection, acknowledged: &BTreeSet<String>) {
    let stored: BTreeSet<String> = sqlx::query_scalar::<_, uuid::Uuid>("select id from api_key")
        .fetch_all(server)
        .await
        .unwrap()
        .into_iter()
        .map(|id| id.to_string())
        .collect();
    let lost: Vec<_> = acknowledged.difference(&stored).collect();
    assert!(lost.is_empty(), "{} of {} acknowledged writes lost: {lost:?}", lost.len(), acknowledged.len());
}

/// Sessions of the service's pools (not of its failover probe) on `server`.
async fn pool_sessions(server: &mut PgConnection, application: &str) -> i64 {
    sqlx::query_scalar("select count(*) from pg_stat_activity where application_name = $1")
        .bind(application)
        .fetch_one(server)
        .await
        .unwrap()
}

/// Polls a statement's answer every 20 ms until `done` holds, for at most `limit`.
async fn until_server<F>(server: &mut PgConnection, application: &str, limit: Duration, done: F)
where
    F: Fn(i64) -> bool,
{
    let started = Instant::now();
    loop {
        let sessions = pool_sessions(server, application).await;
        if done(sessions) {
            return;
        }
        if started.elapsed() >= limit {
            let rows: Vec<String> = sqlx::query_scalar(
                "select concat_ws(' ', pid, state, wait_event, query) from pg_stat_activity where application_name = $1",
            )
            .bind(application)
            .fetch_all(&mut *server)
            .await
            .unwrap();
            panic!("{application} sessions: {sessions} after {limit:?}: {rows:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promoted_standby_takes_the_writes_within_seconds_and_no_acknowledged_write_is_lost() {
    let pair = Pair::start().await;
    let (mut serve, addr, key) = serve_on(&pair);
    let writes = Writes::start(&addr, &key);
    within(Duration::from_secs(15), "writes are acknowledged", || async { writes.acknowledged() >= 20 }).await;

    // The primary dies as in a crash; the standby is promoted, as an operator or Patroni would.
    pair.pg_ctl(&pair.primary(), &["-m", "immediate", "stop"]).await;
    let killed = Instant::now();
    let before = writes.acknowledged();
    pair.pg_ctl(&pair.standby(), &["promote"]).await;
    let promoted = killed.elapsed();
    let first_write =
        within(Duration::from_secs(10), "writes resume", || async { writes.acknowledged() > before }).await;
    within(Duration::from_secs(10), "writes keep going", || async { writes.acknowledged() >= before + 20 }).await;
    let acknowledged = writes.finish().await;
    let recovered = promoted + first_write;
    eprintln!(
        "failover: promotion done {promoted:?} after the primary stopped; first acknowledged write {recovered:?} \
         after it ({first_write:?} after the promotion); {} writes acknowledged",
        acknowledged.len()
    );
    assert!(recovered < Duration::from_secs(10), "recovered in {recovered:?}");

    let mut new_primary = PgConnection::connect(&pair.url(pair.standby_port, "feedwatch")).await.unwrap();
    assert_all_stored(&mut new_primary, &acknowledged).await;
    // The workers' own pool moved too: its sessions (and the queue's LISTEN) are on the new primary.
    until_server(&mut new_primary, "feedwatch-worker", Duration::from_secs(10), |sessions| sessions > 0).await;
    new_primary.close().await.unwrap();
    assert!(terminate(&mut serve).success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_that_turns_read_only_answers_503_and_keeps_none_of_the_sessions_once_the_standby_is_promoted() {
    let pair = Pair::start().await;
    let (mut serve, addr, key) = serve_on(&pair);
    let writes = Writes::start(&addr, &key);
    within(Duration::from_secs(15), "writes are acknowledged", || async { writes.acknowledged() >= 20 }).await;

    // The old primary stays up but refuses writes (as a demoted or fenced primary would); the
    // pools' sessions on it are idle connections and listeners that would otherwise stay.
    let mut old_primary = PgConnection::connect(&pair.url(pair.primary_port, "feedwatch")).await.unwrap();
    for statement in ["alter system set default_transaction_read_only = on", "select pg_reload_conf()"] {
        sqlx::Executor::execute(&mut old_primary, statement).await.unwrap();
    }
    let refused = writes.refused();
    within(Duration::from_secs(10), "writes are refused", || async { writes.refused() > refused }).await;
    let before = writes.acknowledged();
    pair.pg_ctl(&pair.standby(), &["promote"]).await;
    let promoted = Instant::now();
    within(Duration::from_secs(10), "writes resume", || async { writes.acknowledged() >= before + 20 }).await;
    eprintln!("read-only primary: 20 writes acknowledged {:?} after the promotion", promoted.elapsed());
    let acknowledged = writes.finish().await;

    let mut new_primary = PgConnection::connect(&pair.url(pair.standby_port, "feedwatch")).await.unwrap();
    assert_all_stored(&mut new_primary, &acknowledged).await;
    for application in ["feedwatch", "feedwatch-worker"] {
        until_server(&mut old_primary, application, Duration::from_secs(5), |sessions| sessions == 0).await;
        until_server(&mut new_primary, application, Duration::from_secs(10), |sessions| sessions > 0).await;
    }
    assert!(terminate(&mut serve).success());
}

#[test]
fn a_database_url_feedwatch_cannot_use_stops_the_start_with_the_reason_and_without_the_password() {
    for (url, reason) in [
        (
            "postgres://feed:hunter2@127.0.0.1:1,127.0.0.1:2/feedwatch?target_session_attrs=standby",
            "could not write to",
        ),
        ("postgres://feed:hunter2@127.0.0.1:1,127.0.0.1:x/feedwatch", "port `x`"),
        ("postgres://feed:hunter2@127.0.0.1:1,127.0.0.1:2/feedwatch?load_balance_hosts=random", "in the order given"),
    ] {
        let started = Instant::now();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_feedwatch"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", url)
            .env("FEEDWATCH_CREDENTIALS_KEYS", "unused")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{url} was accepted");
        assert!(stderr.contains(reason), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "the password is printed: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(5), "{url} took {:?} to be refused", started.elapsed());
    }
}
